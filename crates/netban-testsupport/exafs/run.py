"""WSGI entry point and server for one netban test instance of ExaFS.

    python run.py PORT PORT_FILE [--init KEYS_JSON]

serves the app with werkzeug's threaded server on 127.0.0.1:PORT (0 = pick a free port) and
writes the bound port to PORT_FILE once it listens. Werkzeug answers HTTP/1.1 but closes the
connection after every response. With `--init` it first prepares a fresh database (see
setup_exafs.py) in the same process, which saves a second start of Python and flowapp.
`flask --app run:app run` works too, as in ExaFS' own docs.

The server exits on SIGTERM, and on its own when the process that started it is gone, so a
test binary killed with SIGKILL leaves no ExaFS behind.
"""

import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import config  # noqa: E402
from flowapp import create_app, db  # noqa: E402

if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[3] == "--init":
    # Before the serving app exists: Alembic reconfigures logging while it migrates.
    import setup_exafs

    setup_exafs.init(sys.argv[4])

app = create_app(config.DevelopmentConfig)
db.init_app(app)


def _exit_when_orphaned(parent):
    while True:
        if os.getppid() != parent:
            os._exit(0)
        time.sleep(0.5)


def main():
    from werkzeug.serving import make_server

    port = int(sys.argv[1])
    port_file = sys.argv[2]
    # The starter passes its pid: if it died before we got here, getppid() is already 1.
    parent = int(os.environ.get("NETBAN_PARENT_PID") or os.getppid())
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))

    server = make_server("127.0.0.1", port, app, threaded=True)
    tmp = port_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(str(server.server_port))
    os.replace(tmp, port_file)
    print(f"netban-testsupport: ExaFS listening on 127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
