"""pytest plugin: `pytest -p rcsim.pytest_plugin`.

Options
  --rcsim-faults SPEC   fault spec for the rcsim_fault_spec fixture (docs/fault-spec.md)
  --rcsim-seed S        the seed every rcsim fixture derives from (default 1)
  --rcsim-swarm N       run each test that uses rcsim_seed for N seeds S, S+1, ...; without
                        --rcsim-faults each seed also samples its own swarm fault plan
  --rcsim-device DEV    where rcsim_case puts torch tensors (cpu, cuda); cuda implies torch
Fixtures
  rcsim_seed, rcsim_fault_spec, rcsim_case (a factory of rcsim.cases.Case),
  rcsim_log_checker (rcsim.check.LogOnceChecker on logger "atom", installed), rcsim_check.
A failing test's report carries the seed and spec that reproduce it.
"""
import pytest

from . import _rcsim, cases, check

DEFAULT_SPEC = "fused:torn(k=mid)"


def pytest_addoption(parser):
    g = parser.getgroup("rcsim", "rcsim fault injection")
    g.addoption("--rcsim-faults", default=None, metavar="SPEC",
                help=f"fault spec for rcsim_fault_spec (default {DEFAULT_SPEC!r})")
    g.addoption("--rcsim-seed", type=int, default=1, metavar="S", help="base seed (default 1)")
    g.addoption("--rcsim-swarm", type=int, default=0, metavar="N",
                help="parametrise tests over N seeds, each with its own swarm fault plan")
    g.addoption("--rcsim-device", default="cpu", metavar="DEV",
                help="device of rcsim_case tensors (cpu or cuda; cuda uses PyTorch)")


def pytest_configure(config):
    spec = config.getoption("--rcsim-faults")
    if spec:
        _rcsim.parse_fault_plan(spec)  # a malformed spec fails the session up front
    if config.getoption("--rcsim-swarm") < 0:
        raise pytest.UsageError("--rcsim-swarm must be >= 0")


def pytest_report_header(config):
    return (f"rcsim: seed {config.getoption('--rcsim-seed')}, faults "
            f"{config.getoption('--rcsim-faults') or '(default ' + DEFAULT_SPEC + ')'}, swarm "
            f"{config.getoption('--rcsim-swarm')}, device {config.getoption('--rcsim-device')}, "
            f"gpu backend {'yes' if _rcsim.has_gpu_backend else 'no'}")


def pytest_generate_tests(metafunc):
    n = metafunc.config.getoption("--rcsim-swarm")
    if n and "rcsim_seed" in metafunc.fixturenames:
        base = metafunc.config.getoption("--rcsim-seed")
        seeds = [base + i for i in range(n)]
        metafunc.parametrize("rcsim_seed", seeds, ids=[f"seed{s}" for s in seeds])


@pytest.fixture
def rcsim_seed(request):
    return request.config.getoption("--rcsim-seed")


@pytest.fixture
def rcsim_fault_spec(request, rcsim_seed):
    spec = request.config.getoption("--rcsim-faults")
    if spec:
        return spec
    if request.config.getoption("--rcsim-swarm"):
        return _rcsim.sample_swarm_plan(rcsim_seed)
    return DEFAULT_SPEC


@pytest.fixture
def rcsim_case(request, rcsim_seed):
    """make(kv_cache_dtype="auto", lib=None, **shape) -> rcsim.cases.Case from the test's seed."""
    device = request.config.getoption("--rcsim-device")

    def make(kv_cache_dtype="auto", lib=None, seed=None, **kwargs):
        if lib is None:
            lib = "torch" if device != "cpu" else "numpy"
        if device != "cpu" and lib == "numpy":
            lib = "torch"  # NumPy arrays live on the host; a device run uses PyTorch tensors
        return cases.Case(rcsim_seed if seed is None else seed, kv_cache_dtype=kv_cache_dtype,
                          lib=lib, device=device if lib == "torch" else "cpu", **kwargs)

    return make


@pytest.fixture
def rcsim_log_checker():
    with check.LogOnceChecker("atom") as checker:
        yield checker


@pytest.fixture
def rcsim_check():
    return check


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        args = getattr(item, "funcargs", {})
        seed = args.get("rcsim_seed", item.config.getoption("--rcsim-seed"))
        spec = args.get("rcsim_fault_spec") or item.config.getoption("--rcsim-faults")
        repro = f"python3 -m pytest '{item.nodeid}' -p rcsim.pytest_plugin --rcsim-seed {seed}"
        if spec:
            repro += f" --rcsim-faults '{spec}'"
        report.sections.append(("rcsim repro", f"seed {seed}, spec {spec!r}\n{repro}"))
