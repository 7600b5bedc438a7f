"""The provider registry is the one place that lists providers: docs derive from it, and nothing else lists them.

Pure file reading: no server, no Ansible run.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tools'))
import document_providers  # noqa: E402  (needs the sys.path entry above)

providers = document_providers.registry()
REGISTRY_FILE = ROOT / 'plugins' / 'module_utils' / 'providers.py'
# Files generated from the registry (the doc fragment; bad-inputs.md quotes the choices in an error message).
GENERATED = {ROOT / 'plugins' / 'doc_fragments' / 'provider.py', ROOT / 'docs' / 'bad-inputs.md'}
# Lines the generator writes inside a hand-written file: the README's table, the roles' choices.
GENERATED_BLOCK = re.compile(r'<!-- providers: written by.*?<!-- end of providers -->|'
                             r'# provider ids[^\n]*tools/document_providers\.py writes the next line\n[^\n]*', re.S)
# Three ids within a few lines are a list (two are a comparison, or a test of those two).
WINDOW = 6
LIST_SIZE = 3


def tracked_files():
    listed = subprocess.run(['git', 'ls-files', '-z'], cwd=ROOT, check=True, capture_output=True).stdout.decode()
    for name in filter(None, listed.split('\0')):
        path = ROOT / name
        if path.suffix in ('.py', '.yml', '.yaml', '.md', '.j2', '.cfg', '.txt', '') and path.is_file():
            yield path


def provider_lists(text):
    """(line number, ids) of each window of lines that names LIST_SIZE or more distinct provider ids."""
    pattern = re.compile(r'(?<![\w.-])(%s)(?![\w-])' % '|'.join(providers.IDS))
    lines = GENERATED_BLOCK.sub('', text).splitlines()
    for start in range(len(lines)):
        found = set(pattern.findall('\n'.join(lines[start:start + WINDOW])))
        if len(found) >= LIST_SIZE:
            yield start + 1, sorted(found)


def test_the_generated_lists_are_current():
    run = subprocess.run([sys.executable, str(ROOT / 'tools' / 'document_providers.py'), '--check'], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_no_file_but_the_registry_lists_providers():
    offenders = []
    for path in tracked_files():
        # Tests name the providers whose behaviour they test; changelogs are history.
        if path == REGISTRY_FILE or path in GENERATED or path.parts[len(ROOT.parts)] in ('tests', 'changelogs'):
            continue
        for line, ids in provider_lists(path.read_text(encoding='utf-8', errors='replace')):
            offenders.append('%s:%d %s' % (path.relative_to(ROOT), line, ', '.join(ids)))
            break
    assert not offenders, 'Provider lists outside the registry (derive them from providers.REGISTRY): %s' % offenders


def test_the_scan_finds_a_list():
    assert list(provider_lists("choices: [auto, neon, planetscale, rds]"))
    assert list(provider_lists("- neon\n- planetscale\n- supabase\n"))
    assert not list(provider_lists("rds_replication, neon_superuser and the pgcdc.clickpipes.rds role"))


@pytest.mark.parametrize('provider', providers.REGISTRY.values(), ids=providers.IDS)
def test_every_provider_is_complete(provider):
    assert provider.name and provider.source_type and provider.role
    assert (ROOT / 'roles' / provider.role / 'meta' / 'argument_specs.yml').is_file()
    for item in provider.notices:
        assert item['id'].startswith(provider.id + '_') and item['what'] and item['where']
    if provider.id != 'generic':
        assert provider.parameters, 'a managed provider says where its settings are changed'
        assert provider.settings or provider.function or provider.extension or provider.host, 'auto cannot find it'


def test_source_types_are_clickpipes_own():
    """ClickPipes' API source.postgres.type values, one per provider."""
    assert sorted(p.source_type for p in providers.REGISTRY.values()) == sorted([
        'postgres', 'planetscale', 'neon', 'rdspostgres', 'aurorapostgres', 'cloudsqlpostgres', 'alloydb', 'azurepostgres',
        'supabase', 'crunchybridge', 'tigerdata'])
