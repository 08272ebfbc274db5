"""`speccc cache`: where speccc's on-disk cache is, what it holds, and clearing it."""
from __future__ import annotations

import click

from speccc.cachedir import KIND_NAMES
from speccc.cli.main import console, main
from speccc.errors import SpecccError


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


@main.group(short_help="Show, clear or shrink speccc's on-disk cache.")
def cache() -> None:
    """speccc's on-disk cache: calibration/ (PIM GEMV runs emulated once per machine),
    dse/ (speccc dse price tables), zoo/ (GGUF models converted to ONNX), tokenizer/
    (GGUF tokenizer metadata). Every entry is only a speedup: removing it costs the
    next command the time to rebuild it.

    \b
    Where: $SPECCC_CACHE, else $XDG_CACHE_HOME/speccc, else ~/.cache/speccc.
    SPECCC_NO_CACHE=1: entries other than zoo models are neither read nor written.
    SPECCC_CACHE_MAX_MB=N: writing a calibration entry evicts the oldest-written
    entries of every kind until the folder holds at most N MB.

    \b
    speccc cache info                       # path, entries and bytes per kind
    speccc cache clear --kind calibration   # remove one kind's entries
    speccc cache clear                      # remove every kind's entries
    speccc cache prune --max-mb 200         # evict oldest entries down to 200 MB
    """


@cache.command("info", short_help="The cache's path, and entries and bytes per kind.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def cache_info(as_json: bool) -> None:
    """Print the cache folder and, per kind, its entries, their bytes and what writes
    them. Files in a kind's folder that speccc did not name are counted as `other`
    (clear leaves them alone)."""
    from speccc.cachedir import cache_root, max_cache_bytes, usage
    root = cache_root()
    rows = usage(root)
    cap = max_cache_bytes()
    if as_json:
        from speccc.textio import dumps_json
        click.echo(dumps_json({
            "path": str(root), "exists": root.is_dir(), "max_bytes": cap,
            "kinds": {u.kind.name: {"entries": len(u.entries), "bytes": u.bytes,
                                    "other_files": u.others, "what": u.kind.what}
                      for u in rows}}, indent=2, sort_keys=True))
        return
    from rich.table import Table
    click.echo(f"cache: {root}" + ("" if root.is_dir() else " (not created yet)"))
    table = Table("kind", "entries", "size", "other", "what")
    for u in rows:
        table.add_row(u.kind.name, str(len(u.entries)), _mb(u.bytes), str(u.others),
                      u.kind.what)
    console().print(table)
    total = sum(u.bytes for u in rows)
    click.echo(f"total {_mb(total)}" + (f" (cap {_mb(cap)}, SPECCC_CACHE_MAX_MB)"
                                        if cap is not None else ""))


@cache.command("clear", short_help="Remove speccc's cache entries (all kinds, or --kind).")
@click.option("--kind", "kinds", multiple=True, metavar="KIND",
              type=click.Choice(list(KIND_NAMES)),
              help=f"Only this kind (repeatable): {', '.join(KIND_NAMES)}. Default: all.")
def cache_clear(kinds: tuple[str, ...]) -> None:
    """Remove the cache's entries without asking. Only files speccc writes are removed
    (entry names it gives, and its writers' temp files over an hour old); a cache folder
    holding anything else is refused (exit 2) and left as it is."""
    from speccc.cachedir import cache_root, clear
    root = cache_root()
    files, size = clear(root, kinds or KIND_NAMES)
    click.echo(f"removed {files} file(s), {_mb(size)}, from {root} "
               f"({', '.join(kinds or KIND_NAMES)})")


@cache.command("prune", short_help="Evict the oldest entries until the cache fits a size.")
@click.option("--max-mb", type=float, default=None,
              help="Size to shrink to, in MB (default: $SPECCC_CACHE_MAX_MB).")
def cache_prune(max_mb: float | None) -> None:
    """Evict entries of every kind, oldest written first, until the cache holds at most
    --max-mb MB. The same eviction runs on each calibration write when
    SPECCC_CACHE_MAX_MB is set."""
    from speccc.cachedir import MAX_MB_ENV, cache_root, max_cache_bytes, prune
    if max_mb is None:
        cap = max_cache_bytes()
        if cap is None:
            raise SpecccError(f"give --max-mb N or set {MAX_MB_ENV}")
    elif not max_mb >= 0:
        raise SpecccError(f"--max-mb {max_mb}: expected a size in MB (a number >= 0)")
    else:
        cap = int(max_mb * 1e6)
    root = cache_root()
    files, size = prune(cap, root)
    click.echo(f"evicted {files} file(s), {_mb(size)}, from {root} (cap {_mb(cap)})")
