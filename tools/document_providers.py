#!/usr/bin/env python
"""Write the provider lists the docs need from the registry (plugins/module_utils/providers.py).

Static documentation cannot import Python, so this writes: the doc fragment of the modules' `provider` option, the
choices of the roles' `clickpipes_provider` (all, or a family role's own), and the README's provider table. `--check` only says what is stale
(tests/unit/plugins/module_utils/test_providers.py runs it), so a list can never drift from the registry.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def registry():
    """The registry module, imported from this checkout (the collection's import path needs its parent folders)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('providers', ROOT / 'plugins' / 'module_utils' / 'providers.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FRAGMENT = '''# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Written by tools/document_providers.py from plugins/module_utils/providers.py: change the registry, then run it.

from __future__ import annotations


class ModuleDocFragment:
    """The provider option of the modules that check a source."""

    DOCUMENTATION = r\'\'\'
options:
  provider:
    description:
      - The provider the fixes and console steps are written for. V(auto) fingerprints the source by what only one
        provider has (a setting, a function, an extension, a host name pattern); any other value names it, and the
        C(provider) check warns when the fingerprint differs.
      - The result's C(clickpipes_connection.source_type) is the ClickPipes source type to pick for it.
%(names)s
    type: str
    choices: [%(choices)s]
    default: auto
\'\'\'
'''

README_START = '<!-- providers: written by tools/document_providers.py from plugins/module_utils/providers.py -->'
README_END = '<!-- end of providers -->'
ROLE_CHOICES_LINE = re.compile(r'^( *# provider ids of this role: tools/document_providers\.py writes the next line\n *choices: )\[[^\]]*\]$', re.M)
CHOICES_LINE = re.compile(r'^( *# provider ids: tools/document_providers\.py writes the next line\n *choices: )\[[^\]]*\]$', re.M)


def fragment(providers):
    names = '\n'.join('      - V(%s) is %s (ClickPipes source type C(%s)).' % (p.id, p.name, p.source_type)
                      for p in providers.REGISTRY.values())
    return FRAGMENT % dict(names=names, choices=', '.join(providers.CHOICES))


def fingerprint(provider):
    marks = ['setting `%s`' % name for name in provider.settings]
    marks += ['function `%s()`' % provider.function] if provider.function else []
    marks += ['extension `%s`' % provider.extension] if provider.extension else []
    marks += ['host `%s`' % provider.host.pattern.replace('|', '\\|')] if provider.host else []
    return ', '.join(marks) or 'none of the others'


def readme_row(p):
    sql = 'user, grants, publication' + ('; replication by `GRANT %s`' % p.replication_role if p.replication_role else '')
    person = ['server settings in %s' % p.parameters.split(':')[0] if p.parameters else 'the restart a setting change needs']
    person += ['`%s`' % item['id'] for item in p.notices]
    return '| `%s` | %s | `%s` | `pgcdc.clickpipes.%s` | %s | %s | %s | %s |' % (
        p.id, p.name, p.source_type, p.role, fingerprint(p), sql, p.automation or '-', '; '.join(person))


def readme_table(providers):
    return '\n'.join(['| `clickpipes_provider` | source | ClickPipes source type | role | fingerprint (`auto`) | by SQL | '
                      'by API (opt-in) | left to a person (notices) |', '|---|---|---|---|---|---|---|---|']
                     + [readme_row(p) for p in providers.REGISTRY.values()])


def outputs(providers):
    """Each written file and its new text."""
    readme = (ROOT / 'README.md').read_text(encoding='utf-8')
    start, end = readme.index(README_START) + len(README_START), readme.index(README_END)
    specs = {}
    for path in sorted((ROOT / 'roles').glob('*/meta/argument_specs.yml')):
        role = path.parent.parent.name
        text = path.read_text(encoding='utf-8')
        own = [p.id for p in providers.REGISTRY.values() if p.role == role]
        text = CHOICES_LINE.sub(lambda m: '%s[%s]' % (m.group(1), ', '.join(providers.CHOICES)), text)
        specs[path] = ROLE_CHOICES_LINE.sub(lambda m: '%s[%s]' % (m.group(1), ', '.join(own)), text)
    specs[ROOT / 'plugins' / 'doc_fragments' / 'provider.py'] = fragment(providers)
    specs[ROOT / 'README.md'] = readme[:start] + '\n' + readme_table(providers) + '\n' + readme[end:]
    return specs


def main(argv):
    stale = []
    for path, text in outputs(registry()).items():
        if not path.exists() or path.read_text(encoding='utf-8') != text:
            stale.append(str(path.relative_to(ROOT)))
            if '--check' not in argv:
                path.write_text(text, encoding='utf-8')
    if stale and '--check' in argv:
        print('Stale provider lists (run tools/document_providers.py): %s' % ', '.join(stale))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
