#!/usr/bin/env python
"""Run galaxy-importer, Galaxy's own upload checks, on the tarball `make build` wrote.

Usage: tools/galaxy_import.py BUILD_DIR

Settings come from tools/galaxy-importer.cfg (offline: no container, no Galaxy). The import fails on an error, as
Galaxy's would, and here also on any warning except ACCEPTED_WARNINGS, so the listing Galaxy shows stays clean.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.path.join(HERE, 'galaxy-importer.cfg')

# galaxy-importer unpacks the tarball as placeholder_namespace.placeholder_name, so ansible-lint cannot resolve the
# collection's own playbooks that docs/examples/awx imports by their real name. Galaxy shows the same line.
ACCEPTED_WARNINGS = ('Failed to find pgcdc.clickpipes.prepare playbook',)


def run_importer(tarball: str, work_dir: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, GALAXY_IMPORTER_CONFIG=CONFIG,
               GALAXY_IMPORTER_TMP_ROOT_DIR=work_dir, GALAXY_IMPORTER_ANSIBLE_LOCAL_TMP=work_dir)
    return subprocess.run([sys.executable, '-m', 'galaxy_importer.main', tarball], env=env, cwd=work_dir,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          check=False)


def problems_in(output: str) -> list[str]:
    """The importer's WARNING and ERROR lines that are not accepted."""
    return [line for line in output.splitlines()
            if line.startswith(('WARNING:', 'ERROR:')) and not any(text in line for text in ACCEPTED_WARNINGS)]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    tarballs = glob.glob(os.path.join(argv[1], 'pgcdc-clickpipes-*.tar.gz'))
    if len(tarballs) != 1:
        print(f'{argv[0]}: expected one pgcdc-clickpipes-*.tar.gz in {argv[1]}, found {tarballs}', file=sys.stderr)
        return 2
    work_dir = os.path.join(argv[1], 'galaxy-importer')
    os.makedirs(work_dir, exist_ok=True)
    proc = run_importer(tarballs[0], work_dir)
    print(proc.stdout, end='')
    problems = problems_in(proc.stdout)
    if proc.returncode != 0 or problems or 'Importer processing completed successfully' not in proc.stdout:
        print(f'{argv[0]}: galaxy-importer rejected {tarballs[0]} or warned (exit {proc.returncode}):', file=sys.stderr)
        for line in problems:
            print(f'  {line}', file=sys.stderr)
        return 1
    print(f'{tarballs[0]}: galaxy-importer accepts it')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
