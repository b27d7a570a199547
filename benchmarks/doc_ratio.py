"""Doc-to-code ratio per package (issue 15, item 7): doc lines / code lines.

Doc lines: lines of module, class and function docstrings plus full-line comments; code lines:
every other non-blank line. Usage: ``python benchmarks/doc_ratio.py [ROOT] [PKG ...]``.
"""
import ast
import io
import sys
import tokenize
from pathlib import Path

def count(path):
    src = path.read_text()
    lines = src.splitlines()
    doc = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                doc.update(range(body[0].lineno, body[0].end_lineno + 1))
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.COMMENT and lines[tok.start[0] - 1].strip().startswith("#"):
            doc.add(tok.start[0])
    nonblank = {i + 1 for i, l in enumerate(lines) if l.strip()}
    d = len(doc & nonblank)
    return d, len(nonblank) - d

root = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
pkgs = sys.argv[2:] or ["ppo_jax", "envs_jax", "paspo_jax", "iar_jax", "mu_jax", "dra_jax", "safe_jax"]
print(f"{'package':12s} {'doc':>6s} {'code':>6s} {'doc/code':>8s}")
for pkg in pkgs:
    d = c = 0
    for f in sorted((root / pkg).rglob("*.py")):
        dd, cc = count(f)
        d, c = d + dd, c + cc
    print(f"{pkg:12s} {d:6d} {c:6d} {d / max(c, 1):8.2f}")
