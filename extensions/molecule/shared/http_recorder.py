#!/usr/bin/env python
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stand-in for an HTTP API (the Neon API in the molecule tests) that records every request.

    python http_recorder.py start --dir DIR   # daemon on 127.0.0.1, a free port; prints JSON (url, port, pid, log)
    python http_recorder.py stop --dir DIR    # stops it (no-op when not running)

Each request is appended to ``DIR/requests.jsonl`` as one JSON object: ``method``, ``path``,
``authorization`` (the header as sent), ``content_type`` and ``body`` (parsed JSON, else text).
Every request is answered ``200`` with a JSON body.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

HOST = '127.0.0.1'


class Recorder(BaseHTTPRequestHandler):
    """Append the request to the log file, answer 200 with a JSON body."""

    log_path = None  # set by serve()

    def _record(self):
        length = int(self.headers.get('Content-Length') or 0)
        raw = self.rfile.read(length).decode('utf-8', 'replace') if length else ''
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        entry = dict(method=self.command, path=self.path, authorization=self.headers.get('Authorization'),
                     content_type=self.headers.get('Content-Type'), body=body)
        with open(self.log_path, 'a', encoding='utf-8') as log:
            log.write(json.dumps(entry, sort_keys=True) + '\n')
        answer = json.dumps({'project': {'id': self.path.rstrip('/').rsplit('/', 1)[-1]}, 'operations': []}).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _record

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        """Quiet: the request log is the record."""


def _paths(state_dir):
    state_dir = Path(state_dir)
    return state_dir / 'recorder.json', state_dir / 'requests.jsonl'


def _running(state_path):
    try:
        state = json.loads(state_path.read_text())
        os.kill(state['pid'], 0)
    except (OSError, ValueError, KeyError):
        return None
    return state


def start(state_dir):
    """Start the daemon unless it runs; return its state."""
    state_path, log_path = _paths(state_dir)
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state = _running(state_path)
    if state:
        return state
    if state_path.exists():
        state_path.unlink()
    log_path.touch()
    child = os.fork()
    if child == 0:  # the daemon: new session, second fork, no terminal
        os.setsid()
        if os.fork() != 0:
            os._exit(0)  # pylint: disable=protected-access
        devnull = os.open(os.devnull, os.O_RDWR)
        for stream in (0, 1, 2):
            os.dup2(devnull, stream)
        Recorder.log_path = str(log_path)
        server = HTTPServer((HOST, 0), Recorder)
        port = server.server_address[1]
        tmp = state_path.with_suffix('.tmp')
        tmp.write_text(json.dumps(dict(url='http://%s:%d' % (HOST, port), port=port, pid=os.getpid(), log=str(log_path))))
        tmp.replace(state_path)
        server.serve_forever()
        os._exit(0)  # pylint: disable=protected-access
    os.waitpid(child, 0)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        state = _running(state_path)
        if state:
            return state
        time.sleep(0.05)
    raise RuntimeError('the recorder did not start within 15s')


def stop(state_dir):
    """Stop the daemon when it runs."""
    state_path = _paths(state_dir)[0]
    state = _running(state_path)
    if state:
        os.kill(state['pid'], signal.SIGTERM)
        deadline = time.monotonic() + 15
        while _running(state_path) and time.monotonic() < deadline:
            time.sleep(0.05)
    if state_path.exists():
        state_path.unlink()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('command', choices=('start', 'stop'))
    parser.add_argument('--dir', required=True, help='where recorder.json and requests.jsonl live')
    args = parser.parse_args(argv)
    if args.command == 'start':
        print(json.dumps(start(args.dir)))
    else:
        stop(args.dir)
    return 0


if __name__ == '__main__':
    sys.exit(main())
