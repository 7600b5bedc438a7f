#!/usr/bin/env python
"""Give ansible-test a pip bootstrap script when its download is unreachable.

Every sanity-test virtual environment that ansible-test creates starts without
pip. ansible-test (``ansible_test/_util/target/setup/requirements.py``,
``bootstrap()``) then runs ``get-pip.py`` for the pip version that
``ansible_test._internal.python_requirements.get_venv_packages()`` names
(pip 24.2 for ansible-core 2.19). It uses a cached copy at
``~/.ansible/test/cache/get_pip_<version>.py`` if there is one, otherwise it
downloads ``https://ci-files.testing.ansible.com/ansible-test/get-pip-<version>.py``
and fails when that host is unreachable.

This tool tries the same download, the same way (``urllib.request.urlopen``,
so the same proxy settings apply). Only if it fails does it write a small
stand-in at the cache path. The stand-in is run by ansible-test exactly like
get-pip.py (argv: pip options and requirement specifiers such as
``pip==24.2 --no-setuptools --no-wheel``); it runs ``python -m ensurepip``,
then ``python -m pip install --cert <system CA bundle> <the same arguments>``
without ``--no-setuptools``/``--no-wheel`` (get-pip options pip does not know),
and finally removes setuptools again if ensurepip added it and
``--no-setuptools`` was asked for, so the environment matches a real one.

A cache file that is the real get-pip.py is never touched. A stand-in written
earlier is removed as soon as the download works again, so a machine with a
normal network always ends up using the real script.

Run it with the Python of the virtual environment that holds ansible-test.
Exit status: 0 when ansible-test can bootstrap pip, 1 otherwise.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import types
import urllib.request

MARKER = '# pgcdc.clickpipes offline stand-in for get-pip.py'

STAND_IN = MARKER + '''
# Written by tools/ansible_test_pip_bootstrap.py because the real get-pip.py
# could not be downloaded. Delete this file to make ansible-test (or that tool)
# try the download again.
"""Install pip with ensurepip, then pip-install the requested packages."""

import os
import subprocess
import sys

GET_PIP_ONLY_OPTIONS = ('--no-setuptools', '--no-wheel')
CA_BUNDLES = (
    '/etc/ssl/certs/ca-certificates.crt',  # Debian, Ubuntu, Alpine
    '/etc/pki/tls/certs/ca-bundle.crt',  # Fedora, RHEL
    '/etc/ssl/ca-bundle.pem',  # openSUSE
    '/etc/ssl/cert.pem',  # macOS, BSD
)


def ca_bundle():
    """Return the system CA bundle pip should trust, or None."""
    for name in ('PIP_CERT', 'SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE'):
        path = os.environ.get(name)
        if path and os.path.isfile(path):
            return path
    for path in CA_BUNDLES:
        if os.path.isfile(path):
            return path
    return None


def has_setuptools():
    """Return True if setuptools is importable in this environment."""
    code = 'import importlib.util, sys; sys.exit(importlib.util.find_spec("setuptools") is None)'
    return subprocess.call([sys.executable, '-c', code]) == 0


def main():
    """Entry point (run by ansible-test's quiet_pip.py through runpy)."""
    args = sys.argv[1:]
    had_setuptools = has_setuptools()
    subprocess.check_call([sys.executable, '-m', 'ensurepip', '--upgrade'], stdout=subprocess.DEVNULL)
    command = [sys.executable, '-m', 'pip', 'install']
    cert = ca_bundle()
    if cert:
        command += ['--cert', cert]
    command += [arg for arg in args if arg not in GET_PIP_ONLY_OPTIONS]
    subprocess.check_call(command)
    if '--no-setuptools' in args and not had_setuptools and has_setuptools():
        subprocess.check_call([sys.executable, '-m', 'pip', 'uninstall', '--yes', '--quiet', 'setuptools'])


if __name__ == '__main__':
    main()
'''


class BootstrapError(Exception):
    """ansible-test's expectations could not be determined."""


def ansible_test_expectations(python_version: str) -> tuple[str, str, str]:
    """Return (pip version, download URL, cache path) exactly as the installed ansible-test computes them."""
    try:
        import ansible_test  # pylint: disable=import-outside-toplevel
        from ansible_test._internal.python_requirements import get_venv_packages  # pylint: disable=import-outside-toplevel
    except ImportError as ex:
        raise BootstrapError(f'ansible-test is not importable by {sys.executable}: {ex}') from None

    pip_version = get_venv_packages(types.SimpleNamespace(version=python_version))['pip']

    source_path = os.path.join(os.path.dirname(ansible_test.__file__), '_util', 'target', 'setup', 'requirements.py')
    with open(source_path, encoding='utf-8') as source_file:
        source = source_file.read()
    url = re.search(r"""^\s*url = '([^']+)' % pip_version$""", source, re.MULTILINE)
    cache = re.search(r"""^\s*cache_path = os\.path\.expanduser\('([^']+)' % pip_version\.replace\("\.", "_"\)\)$""",
                      source, re.MULTILINE)
    if not url or not cache:
        raise BootstrapError(f'the get-pip download/cache logic in {source_path} changed; update {__file__}')
    return (pip_version,
            url.group(1) % pip_version,
            os.path.expanduser(cache.group(1) % pip_version.replace('.', '_')))


def download_works(url: str) -> tuple[bool, str]:
    """Try the download the way ansible-test does; return (ok, reason)."""
    try:
        with contextlib.closing(urllib.request.urlopen(url, timeout=20)) as response:  # nosec - fixed https URL
            response.read(1)
    except Exception as ex:  # pylint: disable=broad-exception-caught  # any failure means ansible-test would fail too
        return False, f'{type(ex).__name__}: {ex}'
    return True, 'ok'


def is_stand_in(path: str) -> bool:
    """Return True if the file at path is a stand-in this tool wrote."""
    try:
        with open(path, encoding='utf-8') as cached:
            return cached.readline().rstrip('\n') == MARKER
    except (OSError, UnicodeDecodeError):
        return False


def write_atomically(path: str, text: str) -> None:
    """Write text to path so that a concurrent reader never sees a partial file."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix='.get_pip.', suffix='.tmp')
    with os.fdopen(fd, 'w', encoding='utf-8') as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def main() -> int:
    quiet = '-q' in sys.argv[1:] or '--quiet' in sys.argv[1:]
    python_version = f'{sys.version_info[0]}.{sys.version_info[1]}'
    try:
        pip_version, url, cache_path = ansible_test_expectations(python_version)
    except BootstrapError as ex:
        print(f'{sys.argv[0]}: {ex}', file=sys.stderr)
        return 1

    def say(message: str) -> None:
        if not quiet:
            print(f'ansible-test pip {pip_version} bootstrap: {message}', file=sys.stderr)

    if os.path.exists(cache_path) and not is_stand_in(cache_path):
        say(f'real script already cached at {cache_path}')
        return 0

    ok, reason = download_works(url)
    if ok:
        if os.path.exists(cache_path):
            os.unlink(cache_path)
            say(f'{url} is reachable again; removed the stand-in {cache_path}')
        else:
            say(f'{url} is reachable; ansible-test will download it')
        return 0

    if os.path.exists(cache_path):
        say(f'{url} still unreachable ({reason}); keeping the stand-in {cache_path}')
        return 0
    write_atomically(cache_path, STAND_IN)
    # Always tell: this changes how ansible-test installs pip on this machine.
    print(f'ansible-test pip {pip_version} bootstrap: {url} unreachable ({reason}); '
          f'wrote an ensurepip-based stand-in to {cache_path}', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
