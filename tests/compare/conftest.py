import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models gain nothing from a second thread, and lose a lot to it on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory):
    """One ``adamask compare --quick`` run of five strategies, shared by the tests that read its files."""
    pytest.importorskip("matplotlib")
    pytest.importorskip("av")
    from _compare_helpers import quick_run

    return quick_run(tmp_path_factory.mktemp("quick") / "run")
