"""examples/notebook.ipynb, executed cell by cell by a real Jupyter kernel (nbclient, ipykernel), as a person
running it top to bottom would: the buggy cell diverges at the forget gate, the fixed one matches."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "notebook.ipynb"


def outputs(cell):
    """A code cell's text: its streams, and the plain-text and HTML forms of what it shows."""
    texts = []
    for output in cell.outputs:
        assert output.output_type != "error", f"{output.ename}: {output.evalue}"
        texts += [output.get("text", ""), *(output.get("data", {}).get(k, "") for k in ("text/plain", "text/html"))]
    return "\n".join(texts)


def test_the_notebook_runs_from_the_buggy_cell_to_the_fix(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells)  # committed without outputs
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
                   ).execute()
    code = [outputs(cell) for cell in notebook.cells if cell.cell_type == "code"]
    first, frame, check, fixed, check_fixed = code[1], code[2], code[3], code[5], code[6]
    assert "<table>" in first and first.count("<b>DIVERGED</b>") == 4
    assert "First divergence (torch, isolated): <b>backward step 11, gate f, dWf (yours: dWx[1, 9] (f block))</b>" \
        in first and "Hint: the forget-gate derivative." in first
    assert "backward" in frame and "dWf" in frame
    assert check.strip().startswith("(False,") and "'Wf': 40" in check
    assert "): match" in fixed and "DIVERGED" not in fixed
    assert ": passed" in check_fixed
    assert list(tmp_path.iterdir()) == []  # nothing written
