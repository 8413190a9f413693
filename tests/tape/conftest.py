import pytest

from .rig import REAL_DEVICE, RealRig, VirtualRig

PARAMS = ["virtual", pytest.param("real", marks=pytest.mark.skipif(
    not REAL_DEVICE, reason="set STAGEBACKUP_TEST_TAPE=/dev/nstN to run against a real drive"))]


@pytest.fixture(params=PARAMS)
def rig(request, tmp_path):
    if request.param == "virtual":
        return VirtualRig(str(tmp_path / "vtape"))
    return RealRig(REAL_DEVICE)
