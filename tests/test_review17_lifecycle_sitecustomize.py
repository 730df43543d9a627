"""``autotrace run`` runs the application's own ``sitecustomize`` as Python would have found it:
also one shipped compiled without its source (``compileall -b``, then the ``.py`` files deleted,
as some container images do) or inside a zip file on ``PYTHONPATH``. Only ``.py`` files were
looked for: such a ``sitecustomize`` silently did not run in the traced program."""

from __future__ import annotations

import py_compile
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import isolated_env

AUTOTRACE = str(Path(sys.executable).with_name("autotrace"))
_SITE = 'import sys\nsys.stderr.write(f"application sitecustomize in {sys.argv[0]}\\n")\n'
_APP = "from autotrace.runtime import state\nprint(state.settings is not None)\n"


@pytest.mark.parametrize("shipped", ["compiled", "zipped"])
def test_a_compiled_or_zipped_sitecustomize_of_the_application_still_runs(tmp_path: Path, shipped: str) -> None:
    source, compiled = tmp_path / "sitecustomize.py", tmp_path / "site" / "sitecustomize.pyc"
    source.write_text(_SITE)
    compiled.parent.mkdir()
    py_compile.compile(str(source), cfile=str(compiled), doraise=True)
    source.unlink()
    folder = compiled.parent
    if shipped == "zipped":
        folder = tmp_path / "site.zip"
        with zipfile.ZipFile(folder, "w") as archive:
            archive.write(compiled, "sitecustomize.pyc")
        compiled.unlink()
    (tmp_path / "app.py").write_text(_APP)
    done = subprocess.run([AUTOTRACE, "run", "--", sys.executable, "app.py"], cwd=tmp_path,
                          env=isolated_env(tmp_path, PYTHONPATH=str(folder)),
                          capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode, done.stdout) == (0, "True\n"), done.stderr
    # the lines of the application's process (the ``autotrace`` command's own start-up shows first)
    assert [line for line in done.stderr.splitlines() if line.endswith("app.py")] == [
        "application sitecustomize in app.py"]
