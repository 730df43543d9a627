"""Zero-code activation: Python imports this at start-up when ``autotrace run`` has put this folder
first on ``PYTHONPATH``.

It runs the application's own ``sitecustomize`` (if there is one further down the path), then
calls ``autotrace.install()`` configured by environment variables only. Other programs the
application starts (they inherit the environment) are not traced unless
``AUTOTRACE_TRACE_SUBPROCESSES`` is true; its own processes are: a forked one keeps the install,
and one that ``multiprocessing`` spawns (``uvicorn --workers``, a spawn ``Pool``) or joblib's
``loky`` pool starts installs here, as its fork server does (the workers of a ``forkserver`` pool
are forked from it), and so does one it starts to run the same program again (a reloader's:
Flask's debug server, Django's ``runserver``).
Nothing here may stop the application from starting: any failure is reported on stderr and the
application runs untraced.
"""

import importlib.machinery
import importlib.util
import os
import sys

_MARKER = "AUTOTRACE_ACTIVATED_PID"
#: Set in a process forked from the traced one (a pre-fork server's worker): the processes
#: ``multiprocessing`` spawns for it are the program's own too.
_FORKED = "AUTOTRACE_FORKED_PID"
_HERE = os.path.dirname(os.path.abspath(__file__))
#: The program the traced process runs (``_program``): a process it starts to run the same program
#: again is that program's own, re-run by its reloader (the one that serves), not another program.
_PROGRAM = "AUTOTRACE_ACTIVATED_PROGRAM"
#: Longer programs (a long ``-c`` script) are not passed on: their re-runs are not told apart.
_MAX_PROGRAM = 4096


def _say(message: str) -> None:
    """``message`` on stderr. Never raises: a process with no stderr (closed: ``sys.stderr`` is None)
    or a broken one must still start (an error leaving ``site`` ended the interpreter at start-up)."""
    try:
        sys.stderr.write(message)
    except Exception:
        pass


def _run_user_sitecustomize() -> None:
    """Run the ``sitecustomize`` this one shadows: the first after this folder on ``sys.path`` (one
    before it has run already: it chained to this one), found as Python's import finds it (also a
    compiled one without its source, or one in a zip file). The folder is off ``sys.path`` meanwhile, so
    another tool's bootstrap that chains the same way (skipping only its own folder) goes on to the
    next one instead of back to this one, which ran each of them again until the recursion limit."""
    folders = [os.path.abspath(entry or os.getcwd()) for entry in sys.path]
    ours = [index for index, folder in enumerate(folders) if folder == _HERE]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", folders[ours[0] + 1 if ours else 0:])
    if spec is None or spec.loader is None:  # none, or a folder of that name without ``__init__``
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    taken = [(index, sys.path[index]) for index in ours]
    for index, _ in reversed(taken):
        del sys.path[index]
    try:
        spec.loader.exec_module(module)
    finally:
        for index, entry in taken:
            sys.path.insert(index, entry)


def _wanted() -> bool:
    owner = os.environ.get(_MARKER)
    parent = str(os.getppid())
    if owner is None or owner == str(os.getpid()) or (
            parent in (owner, os.environ.get(_FORKED)) and _spawned_by_multiprocessing()):
        return True
    program = _program()
    if parent == owner and program is not None and program == os.environ.get(_PROGRAM):
        return True
    return _trace_subprocesses() is True


_SUBPROCESSES = "AUTOTRACE_TRACE_SUBPROCESSES"


def _trace_subprocesses() -> "bool | None":
    """``AUTOTRACE_TRACE_SUBPROCESSES`` read as every boolean setting is (unset: false); None for a
    value that is neither (``y``, ``enabled``): the launched program says so (``_check_variables``)."""
    word = os.environ.get(_SUBPROCESSES, "").strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    return False if word in ("", "0", "false", "no", "off") else None


def _check_variables() -> None:
    """In the launched program only (not in each process it starts): say once that a mistyped
    ``AUTOTRACE_TRACE_SUBPROCESSES`` traces no other program, rather than leave it unsaid."""
    if _trace_subprocesses() is None:
        _say(f"autotrace: {_SUBPROCESSES}={os.environ[_SUBPROCESSES].strip()[:40]} is not true or false: "
             "the programs this one starts run untraced\n")


#: How ``multiprocessing`` starts its fork server: ``python [flags] -c "from multiprocessing.forkserver import main; ..."``.
_FORKSERVER_COMMAND = "from multiprocessing.forkserver import main;"
#: The module a ``loky`` pool's worker runs (``python -m joblib.externals.loky.backend.popen_loky_posix``):
#: joblib's default process pool, not ``multiprocessing``'s. Its resource tracker is not a worker.
_LOKY_WORKER = "loky.backend.popen_loky_posix"


def _spawned_by_multiprocessing() -> bool:
    """A process ``multiprocessing`` spawned (here: for the traced process itself, its parent) runs
    the application's own code (uvicorn's workers do their whole serving there), as a forked one
    does: not another program. Its marker argument is what ``multiprocessing.spawn`` itself checks;
    a worker of joblib's ``loky`` pool is one too.
    The fork server counts too: the workers it forks keep its install, as any forked process does.
    Its other helper (the resource tracker) is neither."""
    if sys.argv[1:2] == ["--multiprocessing-fork"]:
        return True
    command = getattr(sys, "orig_argv", [])
    if "-c" in command[:-1] and command[command.index("-c") + 1].startswith(_FORKSERVER_COMMAND):
        return True
    module = (_program() or "").split("\x1f")[:2]  # joblib's default pool (loky), vendored or not
    return len(module) == 2 and module[0] == "-m" and (module[1] == _LOKY_WORKER or module[1].endswith(
        "." + _LOKY_WORKER))


def _program() -> "str | None":
    """This interpreter's command line from the program on (script, ``-m`` module or ``-c`` code,
    and its arguments), without the interpreter and its options (a reloader passes on only some of
    them), joined; None if there is none or it is too long. Options are read as the interpreter reads
    them: grouped (``-um pkg``, ``-Bc code``) or with their value attached (``-mpkg``, ``-Wignore``),
    the module or code then named as ``-m pkg`` (a reloader re-runs ``python -um pkg`` as ``-m pkg``)."""
    command = getattr(sys, "orig_argv", [])
    index = 1
    while index < len(command):
        argument = command[index]
        index += 1
        if argument == "-" or not argument.startswith("-"):
            return _joined(command[index - 1:])
        if argument.startswith("--"):  # ``--check-hash-based-pycs`` takes a value; ``--`` ends the options
            index += argument == "--check-hash-based-pycs"
            continue
        for at, letter in enumerate(argument[1:], 2):
            if letter in "mcWX":  # the rest of the group, else the next argument, is its value
                value = argument[at:]
                if not value:
                    value, index = (command[index] if index < len(command) else ""), index + 1
                if letter in "mc":
                    return _joined([f"-{letter}", value, *command[index:]])
                break
    return None


def _joined(program: "list[str]") -> "str | None":
    text = "\x1f".join(program)
    return text if 0 < len(text) <= _MAX_PROGRAM else None


def _mark_forked() -> None:
    os.environ[_FORKED] = str(os.getpid())


def _activate() -> None:
    if not _wanted():
        return
    try:
        import autotrace
    except Exception as exc:  # a ``python`` of another environment than the ``autotrace`` command's (a tool's
        # own: ``hatch run``, ``tox``): the program it starts, maybe in autotrace's environment, is still the one to trace
        _say(f"autotrace: tracing is off for this process: {sys.executable} cannot import autotrace "
             f"({type(exc).__name__}: {exc}); install autotrace in its environment\n")
        return
    if os.environ.get(_MARKER) is None:
        _check_variables()
    os.environ[_MARKER] = str(os.getpid())
    os.environ.pop(_FORKED, None)
    program = _program()
    if program is None:
        os.environ.pop(_PROGRAM, None)
    else:
        os.environ[_PROGRAM] = program
    try:
        autotrace.install()
    except Exception as exc:
        _say(f"autotrace: tracing is off for this process: {type(exc).__name__}: {exc}\n")
        return
    if hasattr(os, "register_at_fork"):  # a forked process keeps the install; a program it execs is another
        os.register_at_fork(after_in_child=_mark_forked)
    try:  # the processes this one starts find this folder first, also once another tool put its own first
        from autotrace._process_exit import keep_bootstrap_first

        keep_bootstrap_first(_HERE)
    except ImportError:  # an autotrace older than this bootstrap (another environment's): as it was
        pass
    except Exception as exc:
        _say(f"autotrace: a program this one execs may run untraced: {type(exc).__name__}: {exc}\n")
    try:
        from autotrace.replay import activate_from_environment

        activate_from_environment(dict(os.environ))
    except Exception as exc:
        _say(f"autotrace: replay is off for this process (the program runs live, traced): "
             f"{type(exc).__name__}: {exc}\n")


try:
    _run_user_sitecustomize()
except Exception as error:  # the user's own sitecustomize failing is theirs to see, but not fatal here
    _say(f"autotrace: the application's sitecustomize raised {type(error).__name__}: {error}\n")
_activate()
