"""Dense peaks of accelerators (with sources) and MFU; the FLOPs per token are in reproduce/core/arithmetic.py.

MFU (model FLOPs utilisation, PaLM appendix B) = tokens/s x FLOPs per token / (devices x dense peak FLOP/s), with
FLOPs per token = 6N + 12·L·T·d: N parameters (embeddings included: the tied LM head is a matrix product), L layers,
context T, width d; the second term is attention's score and value products (forward and backward).

Peaks are the vendors' dense (not 2:4-sparse) tensor-core rates for the compute dtype. Lightning has a table too
(lightning_fabric.utilities.throughput), but it gives the H200's sparse rate and does not recognise the name an H200
SXM reports ("NVIDIA H200"), so the package keeps its own, with the datasheet of every entry. A device that is not
in the table gets no MFU rather than a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

# Datasheets (tensor-core rates; the H100 and H200 sheets print rates with sparsity, halved here for dense).
V100_SHEET = "NVIDIA V100 datasheet (volta-v100-datasheet-update-us-1165301-r5.pdf): tensor performance"
A100_SHEET = "NVIDIA A100 datasheet (nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf): dense tensor core"
H100_SHEET = "NVIDIA H100 datasheet (resources.nvidia.com/en-us-tensor-core): 1,979 (SXM) and 1,513 (PCIe) TFLOPS " \
             "bf16/fp16 with sparsity, halved"
H200_SHEET = "NVIDIA H200 datasheet (hpc-datasheet-sc23-h200-datasheet-3002446): 1,979 TFLOPS bf16/fp16 with " \
             "sparsity (SXM), halved; the H100 SXM's chip and rates"


@dataclass(frozen=True)
class Peak:
    """Dense peak FLOP/s of one accelerator by compute dtype (bf16, fp16, tf32, fp32)."""
    name: str
    matches: tuple[str, ...]  # lower-case substrings of torch.cuda.get_device_name(), all required
    flops: dict[str, float]
    source: str
    excludes: tuple[str, ...] = ()  # substrings of variants with other rates (not in the table: no MFU)


PEAKS = (  # first match wins: the specific names before the general ones
    Peak("H200 NVL", ("h200", "nvl"), {"bf16": 835.5e12, "fp16": 835.5e12}, H200_SHEET + "; NVL: 1,671, halved"),
    Peak("H200 SXM", ("h200",), {"bf16": 989.4e12, "fp16": 989.4e12, "tf32": 494.7e12, "fp32": 66.9e12}, H200_SHEET),
    Peak("H100 PCIe", ("h100", "pcie"), {"bf16": 756e12, "fp16": 756e12, "tf32": 378e12, "fp32": 51.2e12},
         H100_SHEET),
    Peak("H100 SXM", ("h100",), {"bf16": 989.4e12, "fp16": 989.4e12, "tf32": 494.7e12, "fp32": 66.9e12}, H100_SHEET,
         excludes=("nvl",)),
    Peak("A100", ("a100",), {"bf16": 312e12, "fp16": 312e12, "tf32": 156e12, "fp32": 19.5e12}, A100_SHEET),
    Peak("V100S PCIe", ("v100s",), {"fp16": 130e12, "fp32": 16.4e12}, V100_SHEET),
    Peak("V100 PCIe", ("v100", "pcie"), {"fp16": 112e12, "fp32": 14e12}, V100_SHEET),
    Peak("V100 SXM", ("v100",), {"fp16": 125e12, "fp32": 15.7e12}, V100_SHEET),
)
PLAN_DEVICES = ("V100 SXM", "A100", "H100 SXM", "H200 SXM")  # the rows of `reproduce plan`
# Lightning precision -> the dtype of the matrix products
COMPUTE_DTYPES = {"bf16-mixed": "bf16", "bf16-true": "bf16", "bf16": "bf16", "16-mixed": "fp16", "16-true": "fp16",
                  "16": "fp16", "32-true": "fp32", "32": "fp32"}


def native_bf16_cpu() -> bool | None:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX); None where torch cannot tell."""
    import torch

    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(probe() for probe in probes) if all(probes) else None


def find_peak(device_name: str) -> Peak | None:
    """The table's entry for a device name as torch reports it, or None."""
    name = device_name.lower()
    return next((p for p in PEAKS if all(m in name for m in p.matches) and not any(x in name for x in p.excludes)),
                None)


def peak_by_name(name: str) -> Peak:
    return next(p for p in PEAKS if p.name == name)


def compute_dtype(precision: str, tf32: bool = False) -> str | None:
    """The matrix dtype of a Lightning precision; fp32 matmuls on tensor cores count as tf32."""
    dtype = COMPUTE_DTYPES.get(precision)
    return "tf32" if dtype == "fp32" and tf32 else dtype


def peak_flops(device_name: str, precision: str, tf32: bool = False) -> float | None:
    """Dense peak FLOP/s for a device and precision; None where either is not in the table."""
    peak, dtype = find_peak(device_name), compute_dtype(precision, tf32)
    return None if peak is None or dtype is None else peak.flops.get(dtype)


def mfu(tokens_per_second: float, flops_token: float, peak: float | None, devices: int) -> float | None:
    """Model FLOPs utilisation; None without a known peak."""
    return None if peak is None else tokens_per_second * flops_token / (devices * peak)
