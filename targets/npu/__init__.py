"""NPU target: systolic-array kernels, their timing/energy model, listings and numerics.

- kernels.py    IR op -> Kernel (GEMM and vector stages, operands in DRAM or SRAM)
- timing.py     tiling search and timing/energy (arrays, SRAM, external bandwidth)
- estimator.py  `npu_cost`, registered as speccc.costmodel.ESTIMATORS["npu"]
- program.py    `kernel_listing`, `emit_npu_listings(graph, hw, bindings, outdir)`
- semantics.py  `run_op`: numpy semantics, GEMMs executed tile by tile
See docs/npu.md.
"""
