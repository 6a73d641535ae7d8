"""Shared pytest setup: make the helpers in test/ (factory.py, tool_module.py) importable, and
keep the ROS end-to-end tests in file order when pytest-randomly shuffles the rest."""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def pytest_collection_modifyitems(config, items):
    """pytest.ini shuffles the tests with a fixed seed (pytest-randomly), so that a test which
    only passes after another one fails. The tests in test/ros share node graphs started per
    module and run last, in the order their files define them."""
    ros_dir = HERE / "ros"
    ros = [it for it in items if ros_dir in Path(str(it.path)).resolve().parents]
    if not ros:
        return
    rest = [it for it in items if ros_dir not in Path(str(it.path)).resolve().parents]
    ros.sort(key=lambda it: (str(it.path), it.location[1] or 0))
    items[:] = rest + ros
