"""Pre-warmed kernels: a fresh kernel process per notebook, without the start-up cost.

Starting a Jupyter kernel and importing pandas, matplotlib and the report
modules in it costs about two seconds of CPU, more than most report notebooks
need to run.  A *kernel fork server* pays it once: a small process imports
ipykernel and those libraries, then, for every notebook, forks a new process
that becomes that notebook's kernel.  Each notebook still runs in a kernel
process of its own (nothing is shared between notebooks); only the imports are
inherited.

Use :class:`ForkingKernelManager` as the kernel manager of papermill/nbclient
(``kernel_manager_class``).  When the server cannot be used (another Python,
a non-ipykernel kernel, a platform without ``fork``), kernels start the usual
way.  The server is used on Linux only; ``STABILITY_PREFORK=0`` turns it off.

The manager plugs in through a private hook of jupyter_client
(``AsyncKernelManager._async_pre_start_kernel``) and follows forked kernels
through ``/proc``.  :func:`problem` checks both before any kernel starts; when
the hook is missing, has another signature, or raises, pre-warmed kernels are
turned off for the process (:func:`turn_off`) and kernels start the ordinary
way: slower, but the reports are the same.
"""

from __future__ import annotations

import inspect
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from traitlets import DottedObjectName, Type
from jupyter_client.provisioning import LocalProvisioner

#: Imported once by the server, inherited by every kernel it forks.
PRELOAD = ("ipykernel.kernelapp", "ipykernel.ipkernel", "numpy", "pandas", "pyarrow", "matplotlib",
           "matplotlib.figure", "matplotlib.backends.backend_agg", "matplotlib_inline.backend_inline",
           "xlsxwriter", "stability.pipeline", "stability.report.notebook", "stability.report.content",
           "stability.report.figures", "stability.report.priorities", "stability.report.trends",
           "stability.report.pockets", "stability.report.interactive")


#: Imported by the server only: what every kernel imports while it starts (its debugger, shell history, pdb)
#: and while the first cell sets up the report (pyplot, to resolve the inline backend; the spec parser; what
#: unpickling the cached result needs) and while it saves its first figure (PIL image plugins) and workbook.
KERNEL_PRELOAD = ("ipykernel.zmqshell", "ipykernel.debugger", "IPython.core.history", "sqlite3", "psutil", "pdb",
                  "faulthandler", "IPython.display", "IPython.core.pylabtools", "matplotlib.pyplot", "yaml",
                  "shapely", "shapely.geometry", "pyarrow.pandas_compat", "stability.io", "stability.paths",
                  "stability.report.context", "matplotlib.patheffects", "PIL.BmpImagePlugin", "PIL.GifImagePlugin",
                  "PIL.JpegImagePlugin", "PIL.PpmImagePlugin", "PIL.PngImagePlugin", "encodings.utf_16_le",
                  "stability.explain", "stability.priorities", "stability.locations", "stability.weights",
                  "stability.rounds", "pandas.io.formats.html", "pandas.core.reshape.reshape", "scipy.stats",
                  "statsmodels.stats.multitest")


# ----------------------------------------------------------------- server side
_PRELOADED = False


def preload() -> None:
    """Import what kernels need, warm the figures' fonts and freeze the heap, once per process tree.

    Run by the kernel server before it forks kernels, and on import of
    :mod:`stability.report.preheat` by the report pool's process server, so that every worker
    and every kernel server it forks inherit it instead of doing it again.
    """
    global _PRELOADED
    if _PRELOADED:
        return
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # importing the debugger says nothing
    for name in (*PRELOAD, *KERNEL_PRELOAD):
        try:
            __import__(name)
        except Exception:  # a missing optional library only costs time in the kernel
            pass
    try:  # fonts loaded and glyphs laid out once, for every kernel
        from .figures import warm_up

        warm_up()
    except Exception:  # only costs time in the kernels
        pass
    try:  # the embedded boundaries that place the locations (data-quality table), read and projected once
        from ..locations import boundaries

        boundaries()
    except Exception:  # only costs time in the kernels
        pass
    import gc

    gc.collect()
    gc.freeze()  # the children's garbage collector leaves the inherited objects (and their pages) alone
    _PRELOADED = True


def serve() -> None:
    """Run the fork server: read one JSON request per line, fork a kernel, answer its pid."""
    preload()

    def reap(*_):
        while True:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    signal.signal(signal.SIGCHLD, reap)
    out = sys.stdout
    print(json.dumps({"ready": os.getpid()}), file=out, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _become_kernel(request)
        print(json.dumps({"pid": pid}), file=out, flush=True)


def _become_kernel(request: dict) -> None:
    """In the forked child: detach from the server and run an IPython kernel."""
    code = 0
    try:
        os.setpgid(0, 0)  # a process group of its own: signals to the kernel never reach the server
        import gc

        gc.set_threshold(50_000, 20, 20)  # a kernel lives seconds: collect rarely (reports allocate many objects)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)  # the server's request pipes are no business of the kernel
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["ipykernel_launcher", *request["args"]]
        from ipykernel import kernelapp

        kernelapp.launch_new_instance()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        os._exit(code)


# ----------------------------------------------------------------- client side
class ForkServer:
    """Handle on a fork server process (one per worker process).

    :meth:`spawn` starts it as a new Python process that imports :data:`PRELOAD`;
    :meth:`from_here` forks it from the calling process, which must be
    single-threaded and should already have imported :data:`PRELOAD` (a fresh
    pool worker forked from a preloaded multiprocessing server is).
    """

    def __init__(self, pid: int, requests, answers, proc: subprocess.Popen | None = None):
        self.pid = pid
        self.requests = requests
        self.answers = answers
        self.proc = proc
        self.lock = threading.Lock()
        self.ready = False

    @classmethod
    def spawn(cls) -> "ForkServer":
        proc = subprocess.Popen([sys.executable, "-m", "stability.report.kernels"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, bufsize=1)
        return cls(proc.pid, proc.stdin, proc.stdout, proc)

    @classmethod
    def from_here(cls) -> "ForkServer":
        req_r, req_w = os.pipe()
        ans_r, ans_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.dup2(req_r, 0)
                os.dup2(ans_w, 1)
                os.closerange(3, _max_fd())  # nothing of the parent's pipes and sockets stays open here
                sys.stdin = os.fdopen(0, "r")
                sys.stdout = os.fdopen(1, "w")
                serve()
            finally:
                os._exit(0)
        os.close(req_r)
        os.close(ans_w)
        return cls(pid, os.fdopen(req_w, "w"), os.fdopen(ans_r, "r"))

    def fork(self, args: list[str], cwd: str, env: dict) -> int:
        """Fork a kernel running ``ipykernel_launcher <args>``; return its pid."""
        with self.lock:
            if not self.ready:
                hello = json.loads(self.answers.readline() or "{}")
                if "ready" not in hello:
                    raise RuntimeError("the kernel fork server did not start")
                self.ready = True
            self.requests.write(json.dumps({"args": args, "cwd": cwd, "env": env}) + "\n")
            self.requests.flush()
            answer = self.answers.readline()
        if not answer:
            raise RuntimeError("the kernel fork server stopped")
        return int(json.loads(answer)["pid"])

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        try:
            done, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return False
        return done == 0

    def close(self) -> None:
        """Stop the server (kernels it forked are unaffected)."""
        try:
            self.requests.close()
        except OSError:
            pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        else:
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass


def _max_fd() -> int:
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (ValueError, OSError):
        return 1024


_SERVER: ForkServer | None = None
_SERVER_PID = -1
_LOCK = threading.Lock()
#: The private jupyter_client hook that :class:`ForkingKernelManager` overrides.
HOOK = "_async_pre_start_kernel"
#: Why pre-warmed kernels are off in this process (None: not turned off), and warnings not yet given.
_OFF: str | None = None
_OFF_PID = -1
_CHECKED_PID = -1
_WARNINGS: list[str] = []


def problem() -> str | None:
    """Why :class:`ForkingKernelManager` cannot work with this jupyter_client or system (None if it can).

    The hook must exist on ``AsyncKernelManager``, be a coroutine function and
    accept the keyword arguments jupyter_client passes (``**kw``, no other
    required argument); ``/proc`` must show this process.
    """
    hook = getattr(AsyncKernelManager, HOOK, None)
    if hook is None:
        return f"jupyter_client's AsyncKernelManager has no {HOOK}()"
    if not inspect.iscoroutinefunction(hook):
        return f"jupyter_client's AsyncKernelManager.{HOOK}() is no longer a coroutine"
    try:
        params = list(inspect.signature(hook).parameters.values())[1:]
    except (TypeError, ValueError):
        return f"the signature of jupyter_client's AsyncKernelManager.{HOOK}() cannot be read"
    var_kw = [p for p in params if p.kind is p.VAR_KEYWORD]
    required = [p for p in params if p.kind is not p.VAR_KEYWORD and p.default is p.empty]
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    if not var_kw or required or positional:
        return (f"jupyter_client's AsyncKernelManager.{HOOK}() has another signature "
                f"{inspect.signature(hook)}")
    if not os.path.exists(f"/proc/{os.getpid()}/stat"):
        return "/proc is not available to follow forked kernels"
    return None


def turn_off(reason: str) -> None:
    """Turn pre-warmed kernels off in this process, with one warning (see :func:`take_warnings`)."""
    global _OFF, _OFF_PID
    if _OFF is not None and _OFF_PID == os.getpid():
        return
    _OFF, _OFF_PID = reason, os.getpid()
    _WARNINGS.append(f"pre-warmed kernels are off ({reason}); reports use ordinary kernels, which start "
                     "more slowly")


def off_reason() -> str | None:
    """Why pre-warmed kernels were turned off in this process (None when they are not)."""
    return _OFF if _OFF_PID == os.getpid() else None


def take_warnings() -> list[str]:
    """The warnings of this process not given yet (each is returned once)."""
    out = list(_WARNINGS)
    _WARNINGS.clear()
    return out


def check() -> bool:
    """Check, once per process, that pre-warmed kernels can work; turn them off when not.

    Returns
    -------
    bool
        Whether pre-warmed kernels are on (see :func:`enabled`).
    """
    global _CHECKED_PID
    if _wanted() and _CHECKED_PID != os.getpid():
        _CHECKED_PID = os.getpid()
        reason = problem()
        if reason:
            turn_off(reason)
    return enabled()


def _wanted() -> bool:
    return sys.platform.startswith("linux") and os.environ.get("STABILITY_PREFORK", "1") != "0"


def enabled() -> bool:
    """Fork kernels only on Linux (forking after these imports is not safe on macOS), unless turned off.

    Turned off by ``STABILITY_PREFORK=0`` or, for the process, by :func:`turn_off`
    (a jupyter_client whose private hook changed, see :func:`problem`).
    """
    return _wanted() and off_reason() is None


def fork_server(fork_here: bool = False) -> ForkServer | None:
    """This process's fork server, started on first use (None when disabled).

    Parameters
    ----------
    fork_here : bool
        Start it by forking this process (only from a fresh, single-threaded
        worker that has imported :data:`PRELOAD`); otherwise a new Python
        process is started.
    """
    global _SERVER, _SERVER_PID
    if not check():
        return None
    with _LOCK:
        if _SERVER is None or _SERVER_PID != os.getpid() or not _SERVER.alive():
            import atexit

            _SERVER = ForkServer.from_here() if fork_here else ForkServer.spawn()
            _SERVER_PID = os.getpid()
            atexit.register(_SERVER.close)
        return _SERVER


class ForkedProcess:
    """The part of :class:`subprocess.Popen` that kernel provisioners use, for a forked kernel.

    The kernel is a child of the fork server (which reaps it), not of this
    process, so its state is read from ``/proc`` and signals are sent by pid.
    """

    stdin = stdout = stderr = None

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                with open(f"/proc/{self.pid}/stat", encoding="ascii") as fh:
                    state = fh.read().rsplit(")", 1)[1].split()[0]
                if state in ("Z", "X"):
                    self.returncode = 0
            except (FileNotFoundError, ProcessLookupError, IndexError):
                self.returncode = 0
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout)
            time.sleep(0.02)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkingProvisioner(LocalProvisioner):
    """Launch ipykernel kernels by forking them from the pre-warmed server."""

    async def launch_kernel(self, cmd: list[str], **kwargs):
        server = fork_server()
        own_python = bool(cmd) and os.path.realpath(cmd[0]) == os.path.realpath(sys.executable)
        if server is None or not own_python or "ipykernel_launcher" not in cmd or "-f" not in cmd:
            return await super().launch_kernel(cmd, **kwargs)
        args = cmd[cmd.index("ipykernel_launcher") + 1:]
        env = dict(kwargs.get("env") or os.environ)
        cwd = str(kwargs.get("cwd") or os.getcwd())
        try:
            pid = server.fork(args, cwd, env)
        except (OSError, RuntimeError, ValueError):
            return await super().launch_kernel(cmd, **kwargs)
        self.process = ForkedProcess(pid)
        self.pid = pid
        self.pgid = pid
        self.cwd = cwd
        return self.connection_info


class PromptKernelClient(AsyncKernelClient):
    """A kernel client whose readiness check does not end with 0.2 s of waiting.

    jupyter_client's check asks for ``kernel_info`` until the kernel answers on the shell channel
    and its IOPub channel is connected, then reads IOPub until nothing has come for 0.2 s.  The
    messages that drain drops belong to the check itself, which executing a notebook ignores, so
    this client drains only what has already arrived.
    """

    #: How long the final drain waits for one more message (jupyter_client waits 0.2 s).
    DRAIN_TIMEOUT = 0.01

    async def _async_wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            self.kernel_info()
            try:
                msg = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                pass
            else:
                if msg["msg_type"] == "kernel_info_reply":
                    try:  # IOPub connected? (else ask again)
                        await self.iopub_channel.get_msg(timeout=0.2)
                    except Empty:
                        pass
                    else:
                        self._handle_kernel_info_reply(msg)
                        break
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")
        while True:
            try:
                await self.iopub_channel.get_msg(timeout=self.DRAIN_TIMEOUT)
            except Empty:
                break

    wait_for_ready = _async_wait_for_ready


class ForkingKernelManager(AsyncKernelManager):
    """An async kernel manager whose kernels come from the fork server.

    Use it only when :func:`check` found nothing wrong.  If the hook raises,
    pre-warmed kernels are turned off for the process (:func:`turn_off`) and
    :class:`HookFailed` is raised; the caller then starts an ordinary kernel.
    Its clients are :class:`PromptKernelClient`.
    """

    client_class = DottedObjectName("stability.report.kernels.PromptKernelClient")
    client_factory = Type(PromptKernelClient, klass=AsyncKernelClient)

    async def _async_pre_start_kernel(self, **kw):
        try:
            if self.provisioner is None:
                self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
                self.provisioner = ForkingProvisioner(kernel_id=self.kernel_id, kernel_spec=self.kernel_spec,
                                                      parent=self)
            return await super()._async_pre_start_kernel(**kw)
        except Exception as exc:
            turn_off(f"{HOOK}() raised {type(exc).__name__}: {exc}")
            raise HookFailed(str(exc)) from exc


class HookFailed(RuntimeError):
    """The private hook of jupyter_client failed: start an ordinary kernel instead."""


if __name__ == "__main__":
    serve()
