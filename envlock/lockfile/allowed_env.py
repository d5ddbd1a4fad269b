"""The allow-list of environment variables that change numerics.

Only these are ever recorded or set by envlock: anything else may be a secret
(``AWS_SECRET_ACCESS_KEY``, ``HF_TOKEN``) or machine-specific.  It belongs to
the lockfile because it says what a lock may hold: capture selects by it, the
loader rejects a lock that breaks it, replay sets only what it allows.
"""

from __future__ import annotations

# Exact names.  Thread counts decide reduction order in BLAS/OpenMP; the rest
# switch determinism, TF32, allocator or kernel-choice behaviour.
ALLOWED_ENV_NAMES = frozenset(
    {
        "OMP_NUM_THREADS",
        "OMP_DYNAMIC",
        "OMP_PROC_BIND",
        "OMP_PLACES",
        "OMP_SCHEDULE",
        "MKL_NUM_THREADS",
        "MKL_DYNAMIC",
        "MKL_CBWR",
        "MKL_ENABLE_INSTRUCTIONS",
        "MKL_DEBUG_CPU_TYPE",
        "MKL_THREADING_LAYER",
        "OPENBLAS_NUM_THREADS",
        "OPENBLAS_CORETYPE",
        "OPENBLAS_VERBOSE",
        "OPENBLAS_L2_SIZE",
        "GOTO_NUM_THREADS",
        "BLIS_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
        "NUMEXPR_NUM_THREADS",
        "NUMEXPR_MAX_THREADS",
        "NUMBA_NUM_THREADS",
        "TBB_NUM_THREADS",
        "KMP_AFFINITY",
        "KMP_BLOCKTIME",
        "KMP_DETERMINISTIC_REDUCTION",
        "CUBLAS_WORKSPACE_CONFIG",
        "CUBLASLT_WORKSPACE_SIZE",
        "CUDA_LAUNCH_BLOCKING",
        "CUDA_MODULE_LOADING",
        "CUDNN_DETERMINISTIC",
        "NVIDIA_TF32_OVERRIDE",
        "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE",
        "TORCH_CUDNN_V8_API_DISABLED",
        "TORCH_DETERMINISTIC",
        "PYTORCH_CUDA_ALLOC_CONF",
        "PYTORCH_NO_CUDA_MEMORY_CACHING",
        "PYTHONHASHSEED",
        "TF_DETERMINISTIC_OPS",
        "TF_CUDNN_DETERMINISTIC",
        "TF_ENABLE_ONEDNN_OPTS",
        "TF_INTRA_OP_PARALLELISM_THREADS",
        "TF_INTER_OP_PARALLELISM_THREADS",
        "XLA_FLAGS",
        "XLA_PYTHON_CLIENT_PREALLOCATE",
        "XLA_PYTHON_CLIENT_MEM_FRACTION",
        "JAX_ENABLE_X64",
        "JAX_DEFAULT_MATMUL_PRECISION",
        "ONEDNN_DEFAULT_FPMATH_MODE",
        "DNNL_DEFAULT_FPMATH_MODE",
        "DNNL_MAX_CPU_ISA",
        "ONEDNN_MAX_CPU_ISA",
    }
)

# Prefixes: NCCL's settings change collective algorithms and so reduction order.
# NCCL_* names that carry credentials or host paths do not exist; the values are
# still screened by the lockfile's text check.
ALLOWED_ENV_PREFIXES = ("NCCL_",)


def is_allowed_env_name(name: str) -> bool:
    return name in ALLOWED_ENV_NAMES or name.startswith(ALLOWED_ENV_PREFIXES)
