"""canonicalize: decompose composite ops into a small core (placeholder table filled below)."""
from speccc.passmanager import Pass, register_pass


@register_pass
class Canonicalize(Pass):
    name = "canonicalize"
    summary = "decompose composite ops into the core op set"

    def run_on_graph(self, graph) -> None:
        pass
