"""The roles' variable contract: meta/argument_specs.yml and the defaults files say the same thing.

For every role under roles/ and every entry point of its meta/argument_specs.yml, the variables of
the entry point's defaults file (``defaults/<entry point>.yml``, else ``defaults/main.yml``) are
exactly the options of the spec; every option (suboptions too) has a description and a type; a
default the spec documents is the one the defaults file sets, and is one of its choices; secrets
(string options named ``*password``, ``*api_key``, ``*token``, ``*secret``) are ``no_log``.
Pure file reading: no server, no Ansible run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES_DIR = Path(__file__).resolve().parents[2] / 'roles'
ROLES = sorted(path.name for path in ROLES_DIR.iterdir() if path.is_dir()) if ROLES_DIR.is_dir() else []
SECRET_SUFFIXES = ('password', 'api_key', 'token', 'secret')


def load_yaml(path: Path):
    with path.open(encoding='utf-8') as stream:
        return yaml.safe_load(stream)


def argument_specs(role: str) -> dict:
    return load_yaml(ROLES_DIR / role / 'meta' / 'argument_specs.yml')['argument_specs']


def entry_points():
    return [(role, entry) for role in ROLES if (ROLES_DIR / role / 'meta' / 'argument_specs.yml').is_file()
            for entry in argument_specs(role)]


def defaults_file(role: str, entry: str) -> Path:
    """The defaults an entry point gets: defaults/<entry>.yml when there is one, else defaults/main.yml."""
    own = ROLES_DIR / role / 'defaults' / ('%s.yml' % entry)
    return own if own.is_file() else ROLES_DIR / role / 'defaults' / 'main.yml'


# A role that passes the variables of the role it includes through documents them in its own spec; their defaults are
# that role's (all but the variables it sets itself).
# A family role (rds: RDS and Aurora) documents clickpipes_provider itself, with its own default; a provider role whose
# own defaults file sets a variable of source (supabase: clickpipes_bypass_rls) documents it with its own default too.
def own_default_names(role: str) -> set:
    path = ROLES_DIR / role / 'defaults' / 'main.yml'
    return set((load_yaml(path) or {}) if path.is_file() else {})


PASSES_THROUGH = dict((role, ('source', {'clickpipes_provider', 'clickpipes_manage_settings', 'clickpipes_settings'}
                              | own_default_names(role)))
                      for role in ROLES if role != 'source')


def load_defaults(role: str, entry: str) -> dict:
    path = defaults_file(role, entry)
    own = (load_yaml(path) or {}) if path.is_file() else {}
    if role not in PASSES_THROUGH:
        return own
    included, set_by_role = PASSES_THROUGH[role]
    return {**{name: value for name, value in load_defaults(included, 'main').items() if name not in set_by_role}, **own}


def walk_options(options: dict, prefix=''):
    """(dotted name, spec) of every option and suboption."""
    for name, spec in (options or {}).items():
        yield prefix + name, spec
        yield from walk_options(spec.get('options'), prefix + name + '.')


ENTRY_POINTS = entry_points()
IDS = ['%s:%s' % item for item in ENTRY_POINTS]


def test_there_are_roles():
    assert ROLES, 'no roles under %s' % ROLES_DIR


@pytest.mark.parametrize('role', ROLES)
def test_every_role_has_an_argument_spec(role):
    path = ROLES_DIR / role / 'meta' / 'argument_specs.yml'
    assert path.is_file(), '%s has no meta/argument_specs.yml' % role
    specs = argument_specs(role)
    assert 'main' in specs, '%s: argument_specs.yml has no main entry point' % role


@pytest.mark.parametrize('role, entry', ENTRY_POINTS, ids=IDS)
def test_defaults_are_the_spec_options(role, entry):
    options = set(argument_specs(role)[entry].get('options') or {})
    defaults = set(load_defaults(role, entry))
    path = defaults_file(role, entry).relative_to(ROLES_DIR.parent)
    assert not defaults - options, '%s: in %s but not in the %s spec: %s' % (role, path, entry, sorted(defaults - options))
    assert not options - defaults, '%s: in the %s spec but not in %s: %s' % (role, entry, path, sorted(options - defaults))


@pytest.mark.parametrize('role, entry', ENTRY_POINTS, ids=IDS)
def test_every_option_has_a_description_and_a_type(role, entry):
    spec = argument_specs(role)[entry]
    assert spec.get('short_description'), '%s:%s has no short_description' % (role, entry)
    missing = ['%s (%s)' % (name, key) for name, option in walk_options(spec.get('options'))
               for key in ('description', 'type') if not option.get(key)]
    assert not missing, '%s:%s options without a description or type: %s' % (role, entry, ', '.join(missing))


@pytest.mark.parametrize('role, entry', ENTRY_POINTS, ids=IDS)
def test_documented_defaults_are_the_real_ones(role, entry):
    defaults = load_defaults(role, entry)
    wrong = []
    for name, option in (argument_specs(role)[entry].get('options') or {}).items():
        if 'default' in option and name in defaults and option['default'] != defaults[name]:
            wrong.append('%s: spec %r, defaults file %r' % (name, option['default'], defaults[name]))
        choices = option.get('choices')
        value = defaults.get(name)
        if choices and value not in (None, '') and not set(value if isinstance(value, list) else [value]) <= set(choices):
            wrong.append('%s: default %r is not among the choices %r' % (name, value, choices))
    assert not wrong, '%s:%s:\n%s' % (role, entry, '\n'.join(wrong))


@pytest.mark.parametrize('role, entry', ENTRY_POINTS, ids=IDS)
def test_secrets_are_no_log(role, entry):
    leaking = [name for name, option in walk_options(argument_specs(role)[entry].get('options'))
               if name.endswith(SECRET_SUFFIXES) and option.get('type') == 'str' and not option.get('choices')  # not update_password
               and not option.get('no_log')]
    assert not leaking, '%s:%s secret options without no_log: true: %s' % (role, entry, leaking)


@pytest.mark.parametrize('role', sorted(PASSES_THROUGH))
def test_passed_through_options_are_documented_as_the_included_role_does(role):
    included, set_by_role = PASSES_THROUGH[role]
    expected = {name: option for name, option in argument_specs(included)['main']['options'].items() if name not in set_by_role}
    options = argument_specs(role)['main']['options']
    assert {name: options.get(name) for name in expected} == expected
