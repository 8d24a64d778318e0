"""The dense peak table names each card as torch reports it, and the MFU arithmetic matches the H200 measurement."""

from __future__ import annotations

import pytest

from reproduce.core.arithmetic import flops_per_token
from reproduce.core.perf import PEAKS, PLAN_DEVICES, find_peak, mfu, peak_by_name, peak_flops


@pytest.mark.parametrize(("device", "row"), [
    ("NVIDIA H200", "H200 SXM"), ("NVIDIA H200 NVL", "H200 NVL"), ("NVIDIA H100 80GB HBM3", "H100 SXM"),
    ("NVIDIA H100 PCIe", "H100 PCIe"), ("NVIDIA A100-SXM4-80GB", "A100"), ("NVIDIA A100 80GB PCIe", "A100"),
    ("Tesla V100-SXM3-32GB", "V100 SXM"), ("Tesla V100-PCIE-16GB", "V100 PCIe"),
    ("Tesla V100S-PCIE-32GB", "V100S PCIe"),
])
def test_device_names_find_their_row(device: str, row: str) -> None:
    assert find_peak(device).name == row


@pytest.mark.parametrize("device", ["NVIDIA H100 NVL", "NVIDIA L4", "cpu", "NVIDIA GeForce RTX 4090"])
def test_an_unknown_device_gets_no_peak_rather_than_a_guess(device: str) -> None:
    assert find_peak(device) is None and peak_flops(device, "bf16-mixed") is None


def test_peaks_by_precision_and_their_sources() -> None:
    assert peak_flops("NVIDIA H200", "bf16-mixed") == 989.4e12
    assert peak_flops("NVIDIA A100-SXM4-40GB", "32-true", tf32=True) == 156e12
    assert peak_flops("Tesla V100-SXM2-32GB", "16-mixed") == 125e12  # PUBLISHED.md §7's V100 peak
    assert peak_flops("Tesla V100-SXM2-32GB", "bf16-mixed") is None  # no bf16 on a V100
    for peak in PEAKS:
        assert "datasheet" in peak.source and peak.flops
    assert {peak_by_name(name).name for name in PLAN_DEVICES} == set(PLAN_DEVICES)


def test_mfu_reproduces_the_issues_measurement() -> None:
    """Measured before the fast step: ruGPT-3 large at context 1024, 41k tokens/s on one H200 is 20.8% MFU."""
    per_token = flops_per_token(760_300_032, n_layer=24, n_embd=1536, context=1024)
    assert per_token == 6 * 760_300_032 + 12 * 24 * 1024 * 1536
    assert round(100 * mfu(41_000, per_token, peak_flops("NVIDIA H200", "bf16-mixed"), devices=1), 1) == 20.8
    assert mfu(41_000, per_token, None, devices=1) is None
