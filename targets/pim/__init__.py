"""PIM target: DRAM banks that compute (AiM / HBM-PIM / HBM3-PIM presets).

- target.py     `PimTarget`: the speccc.targets interface (can_lower, cost, place,
                lowering to `pim.kernel`, emulator, time, describe)
- cost.py       emulator-calibrated op costs (what `cost` / `partition` see)
- placement.py  weights and KV cache to channels / banks / rows, capacity check
- codegen.py    op -> kernel phases (listings): op_layout.py (what lowers, regions),
                kernels.py (GEMV, gated MLP, elementwise), attention_kernel.py;
                layout.py, kv_layout.py (kv_keys.py, kv_values.py), gemv.py
- isa.py, listing.py (+ listing_model.py, listing_parser.py, listing.lark), ISA.md
                commands and the listing text form
- emulator.py, functional.py, timing.py, steady.py, scheduler.py (+ signatures.py),
                checker.py
See docs/pim.md.
"""
