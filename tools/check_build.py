#!/usr/bin/env python
"""Check the collection tarball that `ansible-galaxy collection build` wrote.

Usage: tools/check_build.py BUILD_DIR

Exactly one pgcdc-clickpipes-*.tar.gz must be in BUILD_DIR. It must hold the
published content (MANIFEST.json, FILES.json, README.md, LICENSE,
meta/runtime.yml, plugins/) and none of the development files (tests/, the
virtualenv, tools, CI and editor files).
"""

from __future__ import annotations

import glob
import os
import sys
import tarfile

REQUIRED = ('MANIFEST.json', 'FILES.json', 'README.md', 'LICENSE', 'meta/runtime.yml')
REQUIRED_DIRS = ('plugins/',)
FORBIDDEN_PREFIXES = ('tests/', '.venv/', '.build/', '.ci/', 'tools/', '.git/', '.ansible/', 'extensions/molecule/')
FORBIDDEN_NAMES = ('Makefile', 'requirements-dev.txt', '.gitignore', '.ansible-lint', 'CONTRIBUTING.md',
                   'changelogs/.plugin-cache.yaml')


def check(build_dir: str) -> list[str]:
    """Return a list of problems with the tarball in build_dir."""
    tarballs = glob.glob(os.path.join(build_dir, 'pgcdc-clickpipes-*.tar.gz'))
    if len(tarballs) != 1:
        return [f'expected one pgcdc-clickpipes-*.tar.gz in {build_dir}, found {tarballs}']
    with tarfile.open(tarballs[0]) as tar:
        names = [name[2:] if name.startswith('./') else name for name in tar.getnames()]
    problems = [f'missing {name}' for name in REQUIRED if name not in names]
    problems += [f'no {prefix} content' for prefix in REQUIRED_DIRS
                 if not any(name.startswith(prefix) for name in names)]
    problems += [f'development file in tarball: {name}' for name in names
                 if name.startswith(FORBIDDEN_PREFIXES) or name in FORBIDDEN_NAMES
                 or name.rstrip('/') + '/' in FORBIDDEN_PREFIXES or name.endswith(('.pyc', '.tar.gz'))]
    if not problems:
        print(f'{tarballs[0]}: {len(names)} entries, plugins/ present, no development files')
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    problems = check(argv[1])
    for problem in problems:
        print(f'{argv[0]}: {problem}', file=sys.stderr)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
