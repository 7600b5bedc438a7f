#!/usr/bin/env python
"""Make the directory layouts Ansible tools need, outside the repository.

The repository root is the collection root, but Ansible finds collections only
under ``<dir>/ansible_collections/<namespace>/<name>``. This script builds such
layouts in a per-user, per-checkout work directory outside the repository (a
layout inside the repository would be a symlink loop for ansible-lint, pytest
and ``ansible-galaxy collection build``).

Commands (each prints the resulting path on stdout):

``collections``
    ``<work>/collections/ansible_collections/pgcdc/clickpipes`` is a symlink to
    the repository; prints ``<work>/collections`` (a value for
    ``ANSIBLE_COLLECTIONS_PATH``).

``ansible-test``
    ``<work>/ansible-test/ansible_collections/pgcdc/clickpipes`` is a fresh copy
    of the files git lists (tracked and untracked-but-not-ignored, so it works
    before anything is committed); prints that collection directory, where
    ``ansible-test`` must be run.

``workdir``
    prints ``<work>``.

``<work>`` is ``$PGCDC_WORKDIR`` if set, else
``${TMPDIR:-/tmp}/pgcdc-clickpipes-<uid>/<hash of the repository path>``.

``tests/integration/playbook.py`` imports this file, so keep it dependency-free.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile

NAMESPACE = 'pgcdc'
NAME = 'clickpipes'
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


class LayoutError(Exception):
    """A layout could not be made."""


def _is_inside(path: str, parent: str) -> bool:
    path = os.path.realpath(path)
    parent = os.path.realpath(parent)
    return path == parent or path.startswith(parent + os.sep)


def _private_dir(path: str) -> None:
    """Create ``path`` (mode 0700) or check that an existing one is ours and not a symlink."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise LayoutError(f'{path} is not a directory owned by uid {os.getuid()}; '
                          'remove it or set PGCDC_WORKDIR')


def workdir(repo_root: str = REPO_ROOT) -> str:
    """Return (and create) the per-user, per-checkout work directory."""
    repo_root = os.path.realpath(repo_root)
    work = os.environ.get('PGCDC_WORKDIR')
    if work:
        work = os.path.abspath(work)
        os.makedirs(work, mode=0o700, exist_ok=True)
    else:
        base = os.path.join(tempfile.gettempdir(), f'pgcdc-clickpipes-{os.getuid()}')
        _private_dir(base)
        key = hashlib.sha256(repo_root.encode()).hexdigest()[:12]
        work = os.path.join(base, key)
        _private_dir(work)
    if _is_inside(work, repo_root):
        raise LayoutError(f'work directory {work} is inside the repository {repo_root}')
    return work


def _replace_symlink(link: str, target: str) -> None:
    if os.path.islink(link):
        if os.readlink(link) == target:
            return
        os.unlink(link)
    elif os.path.lexists(link):
        raise LayoutError(f'{link} exists and is not a symlink')
    tmp = f'{link}.{os.getpid()}.tmp'
    os.symlink(target, tmp)
    os.replace(tmp, link)  # atomic: concurrent callers never see a missing link


def collections_path(repo_root: str = REPO_ROOT) -> str:
    """Return a directory for ANSIBLE_COLLECTIONS_PATH that holds this collection."""
    repo_root = os.path.realpath(repo_root)
    root = os.path.join(workdir(repo_root), 'collections')
    namespace_dir = os.path.join(root, 'ansible_collections', NAMESPACE)
    os.makedirs(namespace_dir, exist_ok=True)
    _replace_symlink(os.path.join(namespace_dir, NAME), repo_root)
    return root


def _git_files(repo_root: str) -> list[str]:
    try:
        out = subprocess.run(
            ['git', '-C', repo_root, 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
            check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as ex:
        detail = getattr(ex, 'stderr', b'') or b''
        raise LayoutError(f'cannot list files with git in {repo_root}: {ex} {detail.decode(errors="replace")}') from None
    return sorted({name for name in out.decode('utf-8', 'surrogateescape').split('\0') if name})


def ansible_test_tree(repo_root: str = REPO_ROOT) -> str:
    """Copy the files git lists into a fresh ansible_collections layout; return the collection dir."""
    repo_root = os.path.realpath(repo_root)
    root = os.path.join(workdir(repo_root), 'ansible-test')
    dest = os.path.join(root, 'ansible_collections', NAMESPACE, NAME)
    if os.path.lexists(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    for name in _git_files(repo_root):
        src = os.path.join(repo_root, name)
        if not os.path.lexists(src):  # tracked but deleted in the work tree
            continue
        if os.path.isdir(src) and not os.path.islink(src):  # a submodule or nested repository
            continue
        target = os.path.join(dest, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)
    return dest


def main(argv: list[str]) -> int:
    commands = {'collections': collections_path, 'ansible-test': ansible_test_tree, 'workdir': workdir}
    if len(argv) != 2 or argv[1] not in commands:
        print(f'usage: {argv[0]} {{{"|".join(commands)}}}', file=sys.stderr)
        return 2
    try:
        print(commands[argv[1]]())
    except LayoutError as ex:
        print(f'{argv[0]}: {ex}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
