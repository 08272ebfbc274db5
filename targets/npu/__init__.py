"""NPU target: systolic-array kernels, their timing/energy model, listings and numerics.

- kernels.py    IR op -> Kernel (GEMM and vector stages, operands in DRAM or SRAM)
- timing.py     tiling search and timing/energy (arrays, SRAM, external bandwidth)
- target.py     `NpuTarget`: the speccc.targets.Target hooks (cost, lowering to `npu.kernel`)
- estimator.py  `npu_cost`: the target's cost
- program.py    `format_kernel`, `kernel_listing`: the listing text of one kernel
- semantics.py  `run_op`: numpy semantics, GEMMs executed tile by tile
See docs/npu.md.
"""
