"""dce: erase ops whose results are never used and are not graph outputs.

After: every op contributes to some output. Ops have no side effects in this IR, so
nothing else needs to be kept.
"""
from speccc.passmanager import Pass, register_pass


@register_pass
class DeadCodeElimination(Pass):
    name = "dce"
    summary = "erase ops whose results are unused"

    def run_on_graph(self, graph) -> None:
        graph.remove_dead()
