"""The learner on another host: the controller graph (simulator + controller) and the learner run
in two network namespaces joined by a veth pair, which stand in for two machines on one subnet.
Over DDS between them, transitions go to the learner and signed critics come back: the
controller installs one (critic_version >= 1) and the learner counts the transitions it got.

Needs root (ip netns); skipped with the reason otherwise. The observer runs inside the
controller's namespace (dmpc_ros.probe in a child process) and prints what it saw as JSON.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.ros
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONFIG = os.path.join(ROOT, "config", "ballbot_sim.yaml")

if os.geteuid() != 0 or shutil.which("ip") is None:
    pytest.skip("needs root and iproute2 (ip netns) to build two network namespaces", allow_module_level=True)


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


@pytest.fixture
def two_hosts():
    tag = f"{os.getpid() % 10000}"
    a, b = f"dmpc_ctl{tag}", f"dmpc_lrn{tag}"
    va, vb = f"vc{tag}", f"vl{tag}"
    try:
        sh("ip", "netns", "add", a)
        sh("ip", "netns", "add", b)
        sh("ip", "link", "add", va, "type", "veth", "peer", "name", vb)
        for ns, dev, addr in ((a, va, "10.77.0.1/24"), (b, vb, "10.77.0.2/24")):
            sh("ip", "link", "set", dev, "netns", ns)
            sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up", "multicast", "on")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "route", "add", "224.0.0.0/4", "dev", dev)  # DDS discovery multicast
        yield a, b
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


OBSERVER = textwrap.dedent("""
    import json, sys, time
    import rclpy
    from dmpc_ros.graph import load_config
    from dmpc_ros.probe import GraphProbe
    rclpy.init()
    cfg = load_config(sys.argv[1], {"learner": False})
    probe = GraphProbe(cfg["topics"], record_states=False)
    ok = probe.wait_for(lambda: (d := probe.last_diag("ballbot_controller")) and d[3] == "OK", 240)
    probe.send_goal((0.8, 0.4))
    got = probe.wait_for(lambda: int(probe.diag_value("ballbot_controller", "critic_version") or 0) >= 1, 240)
    probe.wait_for(lambda: int(probe.diag_value("dmpc_learner", "transitions") or 0) >= 64, 60)
    out = {"controller_ok": bool(ok), "critic_installed": bool(got),
           "critic_version": probe.diag_value("ballbot_controller", "critic_version"),
           "critic_source": probe.diag_value("ballbot_controller", "critic_source"),
           "critics_rejected": probe.diag_value("ballbot_controller", "critics_rejected"),
           "last_reject_reason": probe.diag_value("ballbot_controller", "last_reject_reason"),
           "learner_transitions": probe.diag_value("dmpc_learner", "transitions")}
    print("RESULT " + json.dumps(out), flush=True)
    probe.close()
    rclpy.try_shutdown()
""")


def test_controller_and_learner_on_two_hosts_exchange_transitions_and_signed_critics(two_hosts, tmp_path):
    ns_ctl, ns_lrn = two_hosts
    key = tmp_path / "key"
    key.write_text(os.urandom(32).hex())  # the key file copied to both hosts
    key.chmod(0o600)  # key files must be readable by their owner only
    env = dict(os.environ, PYTHONPATH=ROOT, ROS_DOMAIN_ID=str(random.randint(101, 200)),
               ROS_AUTOMATIC_DISCOVERY_RANGE="SUBNET")
    env.pop("ROS_STATIC_PEERS", None)
    common = ["--set", f"nodes.controller.parameters.critic_hmac_key_file={key}",
              "--set", f"nodes.learner.parameters.critic_hmac_key_file={key}",
              "--set", f"nodes.learner.parameters.checkpoint_dir={tmp_path / 'learner'}",
              "--set", "nodes.learner.parameters.learner.min_transitions=64",
              "--set", "nodes.learner.parameters.learner.fit_normalization_at=64",
              "--set", "nodes.learner.parameters.update_period=0.2",
              "--set", "nodes.learner.parameters.push_every=1"]
    launch = [sys.executable, "-m", "dmpc_ros.launcher", CONFIG, "--log-dir"]
    procs = []
    try:
        procs.append(subprocess.Popen(["ip", "netns", "exec", ns_ctl, *launch, str(tmp_path / "ctl_logs"),
                                       "--learner", "off", *common], env=env, cwd=ROOT,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen(["ip", "netns", "exec", ns_lrn, *launch, str(tmp_path / "lrn_logs"),
                                       "--set", "nodes.sim.enabled=false", "--set", "nodes.controller.enabled=false",
                                       *common], env=env, cwd=ROOT,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        obs = subprocess.run(["ip", "netns", "exec", ns_ctl, sys.executable, "-c", OBSERVER, CONFIG],
                             env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    finally:
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
    line = next((ln for ln in obs.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line, f"observer printed no result: {obs.stdout[-2000:]} {obs.stderr[-2000:]}"
    res = json.loads(line[len("RESULT "):])
    assert res["controller_ok"], res
    assert res["critic_installed"] and res["critic_source"] == "topic", res
    assert res["critics_rejected"] == "0", res
    assert int(res["learner_transitions"] or 0) >= 64, res
