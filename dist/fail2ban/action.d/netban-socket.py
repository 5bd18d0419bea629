# netban: a fail2ban Python action for large installations.
#
# fail2ban loads this file into its own process. Each ban and unban becomes one JSON line on
# the socket of `netban daemon`: no process is started per ban, and, unlike command actions
# (action.d/*.conf), Python actions do not wait on fail2ban's global action lock, so a slow
# moment in one jail never stalls the others.
#
# Install: copy this file to /etc/fail2ban/action.d/netban-socket.py, run `netban daemon` (see
# dist/systemd/netban.service), and add the action to your jails in jail.local:
#
#     [sshd]
#     enabled = true
#     action  = %(action_)s
#               netban-socket.py[config=/etc/netban/netban.toml]
#
# Options (all optional, given as `netban-socket.py[key=value, ...]`):
#
#   config            netban's config file. Default: $NETBAN_CONFIG, else
#                     /etc/netban/netban.toml when it exists (as the netban binary does).
#   socket            the daemon's control socket. Default: read from the config
#                     ([daemon] socket, else <state_dir>/netban.sock), else
#                     /var/lib/netban/netban.sock.
#   netban            the netban binary for the fallback. Default: /usr/local/bin/netban.
#   timeout           seconds to wait for the daemon's answer. Default: 2.
#   fallback_timeout  seconds the fallback `netban` process may run. Default: 30.
#   port              the jail's port setting ("%(port)s"), kept with each ban for the
#                     statistics.
#
# Its name (netban-socket) differs from the command action's (netban) on purpose: use one of
# them per jail, and switch between them with `systemctl restart fail2ban`, never
# `fail2ban-client reload` (a reload drops the action it adds: fail2ban #3860).
#
# Semantics are those of the command action (netban.conf):
#
# - A ban is durable once the daemon answered "recorded" (the lease is in SQLite); the
#   daemon delivers it to the sinks afterwards.
# - When the daemon is down or answers with a runtime error, the ban or unban is handed to
#   the `netban` binary instead (an argv list, never a shell), which records it and delivers
#   it inline. Nothing is lost while the daemon restarts.
# - Restored bans (fail2ban restart) are passed as restored: a cheap no-op when the ban is
#   already in place.
# - A target the guard refuses (allowlist, own address, too wide) is not an error: it is
#   logged and the ticket stays banned in fail2ban, as with the command action.
# - flush() keeps network bans: they end when their ban time does. Because flush() exists,
#   fail2ban does NOT unban every address when it stops or restarts.
# - reload() keeps the action across `fail2ban-client reload`.
#
# Every value fail2ban passes (jail names, addresses, times) is treated as hostile: it only
# ever travels as a JSON string or as one argv element. No shell is involved anywhere.

import json
import math
import os
import signal
import socket
import subprocess
import threading
import time

from fail2ban.server.actions import ActionBase

try:  # Python 3.11+: read the socket path from netban's config.
    import tomllib
except ImportError:  # pragma: no cover - older Python: use the default socket path
    tomllib = None


DEFAULT_CONFIG = "/etc/netban/netban.toml"
DEFAULT_STATE_DIR = "/var/lib/netban"
DEFAULT_NETBAN = "/usr/local/bin/netban"
DEFAULT_TIMEOUT = 2.0
DEFAULT_FALLBACK_TIMEOUT = 30.0

# The daemon's error codes: 2 = bad input (retrying cannot help), 1 = runtime failure.
CODE_RUNTIME = 1

# The daemon answers with one short line; anything longer is not an answer.
MAX_ANSWER = 64 * 1024

# After the daemon failed to answer in time, go straight to the binary for this long
# (seconds) instead of waiting for it again on every ban.
BYPASS_AFTER_TIMEOUT = 30.0

# While the daemon stays unreachable, repeat the warning at most this often (seconds), so a
# restart with thousands of restored bans does not flood fail2ban's log.
WARN_EVERY = 60.0

KNOWN_OPTIONS = ("config", "socket", "netban", "timeout", "fallback_timeout", "port")


class DaemonUnavailable(Exception):
    """The daemon could not take the request; the binary should."""


class NetbanAction(ActionBase):
    """Hands fail2ban's bans to `netban daemon`, falling back to the `netban` binary."""

    def __init__(self, jail, name, **kwargs):
        super(NetbanAction, self).__init__(jail, name)
        # One connection per jail; fail2ban may call ban/unban from the jail's thread and
        # from a client thread (`fail2ban-client set JAIL banip`) at the same time.
        self._lock = threading.Lock()
        self._conn = None
        self._bypass_until = 0.0
        self._down_since = None
        self._last_warning = 0.0
        self._fallbacks = 0
        self._configure(kwargs)

    # -- configuration ------------------------------------------------------------------

    def _configure(self, opts):
        """Applies the options of `netban-socket.py[...]` (strings, as jail.conf gives them)."""
        for key in sorted(set(opts) - set(KNOWN_OPTIONS)):
            self._logSys.warning("[%s] netban: unknown option %r ignored (known: %s)",
                                 self._jail.name, key, ", ".join(KNOWN_OPTIONS))
        self.config = _text(opts.get("config"))
        self.netban = _text(opts.get("netban")) or DEFAULT_NETBAN
        self.timeout = _seconds(opts.get("timeout"), DEFAULT_TIMEOUT)
        self.fallback_timeout = _seconds(opts.get("fallback_timeout"), DEFAULT_FALLBACK_TIMEOUT)
        self.socket = _text(opts.get("socket")) or self._socket_from_config()
        # The jail's port setting (netban-socket[port="%(port)s"]), kept for the statistics.
        self.port = _text(opts.get("port"))

    def _config_path(self):
        """The config the binary would read: config=, $NETBAN_CONFIG, the default path."""
        if self.config:
            return self.config
        env = os.environ.get("NETBAN_CONFIG")
        if env:
            return env
        return DEFAULT_CONFIG if os.path.exists(DEFAULT_CONFIG) else None

    def _socket_from_config(self):
        """The daemon socket named by netban's config, or the default one."""
        default = os.path.join(DEFAULT_STATE_DIR, "netban.sock")
        path = self._config_path()
        if not path or tomllib is None:
            return default
        try:
            with open(path, "rb") as f:
                conf = tomllib.load(f)
        except (OSError, ValueError) as e:
            # The binary reports a broken config (exit 3) when the fallback runs.
            self._logSys.warning("[%s] netban: cannot read %s (%s); using socket %s",
                                 self._jail.name, path, e, default)
            return default
        daemon = conf.get("daemon")
        if isinstance(daemon, dict) and isinstance(daemon.get("socket"), str):
            return daemon["socket"]
        state_dir = conf.get("state_dir")
        if isinstance(state_dir, str) and state_dir:
            return os.path.join(state_dir, "netban.sock")
        return default

    # -- fail2ban's interface -------------------------------------------------------------

    def start(self):
        """Jail start: say once whether the daemon answers (bans work either way)."""
        try:
            self._request({"op": "ping"})
        except DaemonUnavailable as e:
            self._daemon_down(e)
        else:
            self._logSys.debug("[%s] netban: daemon answers on %s", self._jail.name, self.socket)

    def stop(self):
        """Jail stop: close the connection. Network bans stay (see flush)."""
        self._close()

    def ban(self, aInfo):
        """A new or restored ban: record it through the daemon, else through the binary."""
        info = self._ban_info(aInfo)
        request = dict(op="ban", **info)
        argv = self._ban_argv(info, self._failures(aInfo))
        self._deliver(request, argv, "ban %s" % _printable(info["ip"]))

    def prolong(self, aInfo):
        """bantime.increment lengthened a ban: record the new end (same as a ban)."""
        self.ban(aInfo)

    @property
    def _prolongable(self):
        return True

    # fail2ban compares this with tickets' ban epochs (consistency repair of command
    # actions); a Python action has nothing to repair.
    banEpoch = 0

    def unban(self, aInfo):
        """This jail's ban ended: the target leaves the sinks when no other ban holds it."""
        ip = _text(aInfo["ip"])
        jail = _text(self._jail.name)
        request = {"op": "unban", "ip": ip, "jail": jail}
        argv = self._base_argv() + ["unban", "--jail=" + jail, "--", ip]
        self._deliver(request, argv, "unban %s" % _printable(ip))

    def flush(self):
        """Jail stop or `unban --all`: keep network bans; they expire on their own.

        Returning True tells fail2ban the flush is done, so it does not unban every address
        one by one. The daemon only logs how many bans it keeps; when it is down there is
        nothing to do.
        """
        jail = _text(self._jail.name)
        try:
            answer = self._request({"op": "flush", "jail": jail})
        except DaemonUnavailable as e:
            self._logSys.debug("[%s] netban: flush: daemon unreachable (%s); network bans are "
                               "kept", jail, e)
            return True
        if answer.get("ok"):
            self._logSys.debug("[%s] netban: flush: keeping %s network bans", jail,
                               _printable(answer.get("kept")))
        else:
            self._logSys.warning("[%s] netban: flush: %s; network bans are kept", jail,
                                 _printable(answer.get("error")))
        return True

    def clearAllParams(self):
        """Called by `fail2ban-client reload` before reload(); nothing to clear.

        fail2ban keeps an existing Python action across a reload only when it has both
        clearAllParams() and reload(); otherwise it flushes and removes it.
        """

    def reload(self, **kwargs):
        """`fail2ban-client reload`: take the (possibly changed) options, keep all bans."""
        self._configure(kwargs)
        self._close()
        self._logSys.debug("[%s] netban: reloaded; socket %s", self._jail.name, self.socket)

    # -- the ban request ------------------------------------------------------------------

    def _ban_info(self, aInfo):
        """The ban's fields as the strings the daemon and the binary expect."""
        info = {
            "ip": _text(aInfo["ip"]),
            "jail": _text(self._jail.name),
            "bantime": _bantime(aInfo["bantime"]),
            "restored": "1" if _truthy(aInfo["restored"]) else "0",
        }
        start = _unix_time(aInfo["time"])
        if start is not None:
            info["time"] = start
        failures = self._failures(aInfo)
        if failures is not None:
            info["failures"] = failures
        if self.port:
            info["port"] = self.port
        return info

    @staticmethod
    def _failures(aInfo):
        """The failure count, for the binary's informational --failures (None if odd)."""
        try:
            n = int(aInfo["failures"])
        except (TypeError, ValueError, KeyError):
            return None
        return "%d" % n if n >= 0 else None

    def _base_argv(self):
        argv = [self.netban]
        if self.config:
            argv.append("--config=" + self.config)
        return argv

    def _ban_argv(self, info, failures=None):
        """The command action's arguments: netban --config C ban --jail J ... IP."""
        # `--key=value` and `--` keep every value an argument, even one that starts with '-'.
        argv = self._base_argv() + ["ban", "--jail=" + info["jail"],
                                    "--bantime=" + info["bantime"]]
        if "time" in info:
            argv.append("--time=" + info["time"])
        argv.append("--restored=" + info["restored"])
        if failures is not None:
            argv.append("--failures=" + failures)
        if "port" in info:
            argv.append("--port=" + info["port"])
        argv += ["--", info["ip"]]
        return argv

    def _deliver(self, request, argv, what):
        """Sends `request` to the daemon; runs `argv` when the daemon cannot take it."""
        jail = self._jail.name
        try:
            answer = self._request(request)
        except DaemonUnavailable as e:
            self._daemon_down(e)
            self._fallback(argv, what)
            return
        self._daemon_up()
        if answer.get("ok"):
            result = answer.get("result")
            if result == "refused":
                # Not an error: fail2ban keeps the ticket, netban skips the target.
                self._logSys.info("[%s] netban: %s skipped: %s", jail, what,
                                  _printable(answer.get("reason", "refused by the guard")))
            else:
                self._logSys.debug("[%s] netban: %s: %s", jail, what, _printable(result))
            return
        if answer.get("code") == CODE_RUNTIME:
            # The daemon could not commit it (e.g. the database is busy): let the binary try.
            self._logSys.warning("[%s] netban: %s: daemon error: %s; running %s instead",
                                 jail, what, _printable(answer.get("error")), self.netban)
            self._fallback(argv, what)
            return
        # Bad input: the binary would refuse it the same way (exit 2), so do not retry.
        self._logSys.warning("[%s] netban: %s refused as bad input: %s", jail, what,
                             _printable(answer.get("error")))

    # -- the daemon connection ------------------------------------------------------------

    def _request(self, message):
        """One request, one answer line (parsed). Raises DaemonUnavailable.

        The connection is kept between calls. The daemon closes idle connections (and
        restarts), so a failure on a reused connection is retried once on a new one; a
        failure on a fresh connection, or a timeout, is not.
        """
        line = (json.dumps(message, ensure_ascii=True) + "\n").encode("ascii")
        if time.time() < self._bypass_until:
            raise DaemonUnavailable("no answer within %gs recently; trying it again at most "
                                    "every %gs" % (self.timeout, BYPASS_AFTER_TIMEOUT))
        with self._lock:
            for attempt in (1, 2):
                reused = self._conn is not None
                try:
                    if self._conn is None:
                        self._conn = self._connect()
                    self._conn.sendall(line)
                    raw = self._read_line(self._conn)
                except socket.timeout:
                    # Never reuse this connection: a late answer would pair with the next
                    # request. A hung daemon must not cost every ban a timeout.
                    self._close_locked()
                    self._bypass_until = time.time() + BYPASS_AFTER_TIMEOUT
                    raise DaemonUnavailable("no answer within %gs on %s"
                                            % (self.timeout, self.socket))
                except (OSError, EOFError) as e:
                    self._close_locked()
                    if reused and attempt == 1:
                        continue
                    raise DaemonUnavailable("%s: %s" % (self.socket, _describe(e)))
                break
        try:
            answer = json.loads(raw.decode("utf-8"))
        except ValueError:
            self._close()
            raise DaemonUnavailable("unreadable answer from %s" % self.socket)
        if not isinstance(answer, dict):
            self._close()
            raise DaemonUnavailable("unexpected answer from %s" % self.socket)
        return answer

    def _connect(self):
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(self.timeout)
        try:
            conn.connect(self.socket)
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _read_line(conn):
        buf = b""
        while b"\n" not in buf:
            chunk = conn.recv(4096)
            if not chunk:
                raise EOFError("the daemon closed the connection")
            buf += chunk
            if len(buf) > MAX_ANSWER:
                raise EOFError("answer longer than %d bytes" % MAX_ANSWER)
        line, _, rest = buf.partition(b"\n")
        if rest:
            # One request has one answer; anything more means we are out of step.
            raise EOFError("unexpected data after the answer")
        return line

    def _close(self):
        with self._lock:
            self._close_locked()

    def _close_locked(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
            self._conn = None

    # -- the fallback ---------------------------------------------------------------------

    def _fallback(self, argv, what):
        """Runs the netban binary (argv list, no shell), as the command action would.

        Like fail2ban's own commands it runs in a new session, and the whole group is killed
        when it overruns `fallback_timeout` (commands of exec sinks included).
        """
        jail = self._jail.name
        self._fallbacks += 1
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, close_fds=True, shell=False,
                                    start_new_session=True)
        except (OSError, ValueError) as e:
            # ValueError: a value with a NUL byte cannot be an argument.
            self._logSys.error("[%s] netban: %s NOT recorded: cannot run %s: %s",
                               jail, what, self.netban, _describe(e))
            return
        try:
            _, stderr = proc.communicate(timeout=self.fallback_timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            proc.communicate()
            self._logSys.error("[%s] netban: %s: %s did not finish within %gs and was killed",
                               jail, what, self.netban, self.fallback_timeout)
            return
        if proc.returncode == 0:
            self._logSys.debug("[%s] netban: %s: done by %s", jail, what, self.netban)
            return
        detail = _last_line(stderr) or "no message"
        if proc.returncode == 2:
            self._logSys.warning("[%s] netban: %s refused as bad input: %s", jail, what, detail)
        else:
            self._logSys.error("[%s] netban: %s: %s exited with %d: %s", jail, what,
                               self.netban, proc.returncode, detail)

    def _daemon_down(self, why):
        """Warns when the daemon becomes unreachable, then at most every WARN_EVERY s."""
        now = time.time()
        if self._down_since is None:
            self._down_since = now
            self._fallbacks = 0
            self._last_warning = now
            self._logSys.warning("[%s] netban: daemon unreachable (%s); bans and unbans go "
                                 "through %s until it answers", self._jail.name, why,
                                 self.netban)
        elif now - self._last_warning >= WARN_EVERY:
            self._last_warning = now
            self._logSys.warning("[%s] netban: daemon still unreachable (%s); %d bans and "
                                 "unbans went through %s since", self._jail.name, why,
                                 self._fallbacks, self.netban)
        else:
            self._logSys.debug("[%s] netban: daemon unreachable: %s", self._jail.name, why)

    def _daemon_up(self):
        if self._down_since is not None:
            self._logSys.info("[%s] netban: daemon answers again on %s after %ds (%d bans and "
                              "unbans went through %s)", self._jail.name, self.socket,
                              time.time() - self._down_since, self._fallbacks, self.netban)
            self._down_since = None


# -- value conversion ---------------------------------------------------------------------

def _text(value):
    """A value as text; None stays None. fail2ban's IPAddr prints as the address."""
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _truthy(value):
    return _text(value).strip().lower() in ("1", "true", "yes")


def _seconds(value, default):
    """A positive number of seconds from an option string, else the default."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return default
    return v if math.isfinite(v) and v > 0 else default


def _bantime(value):
    """fail2ban's bantime (int, float or text) as netban's: seconds, or -1 for permanent."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return _text(value)  # netban rejects it with a message naming the value
    if not math.isfinite(v):
        return _text(value)
    if v < 0:
        return "-1"  # fail2ban treats any negative ban time as permanent
    return "%d" % round(v)


def _unix_time(value):
    """fail2ban's ban start as text (a float for new bans, an int for restored ones)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(v) or v <= 0:
        return None  # netban then starts the ban now
    return "%d" % v if v == int(v) else "%.6f" % v


def _printable(value):
    """Text safe for one log line: control characters (newlines!) escaped, length capped."""
    text = _text(value) if value is not None else "-"
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= 500 else text[:500] + "..."


def _describe(err):
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err) or err.__class__.__name__


def _last_line(data):
    lines = data.decode("utf-8", "replace").strip().splitlines()
    return _printable(lines[-1]) if lines else ""


Action = NetbanAction
