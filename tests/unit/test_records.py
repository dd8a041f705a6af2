"""proxy/records.py: error kinds, request errors, and the policy snapshot."""

from __future__ import annotations

from proxy.loader import load_policy_text
from proxy.records import ErrorKind, PolicyHolder, RequestError

CONFIG = load_policy_text("routes:\n  - path: /api/**\n    origins: [http://localhost:3000]\n")


def test_each_kind_knows_whose_fault_it_is() -> None:
    client = {kind for kind in ErrorKind if kind.is_client}
    assert client == {
        ErrorKind.BODY_TOO_LARGE,
        ErrorKind.CLIENT_BODY_TIMEOUT,
        ErrorKind.CLIENT_BODY_INCOMPLETE,
        ErrorKind.CLIENT_ABORTED,  # the user went away mid-response (issue 10, defect 13)
        ErrorKind.CLIENT_SEND_TIMEOUT,  # the client stopped reading (issue 10, defect 6)
    }
    assert RequestError(ErrorKind.CLIENT_BODY_TIMEOUT).is_client
    assert not RequestError(ErrorKind.CONNECT, aborted=True).is_client


def test_labels_are_what_logs_and_metrics_show() -> None:
    assert RequestError(ErrorKind.TIMEOUT).label == "timeout"
    assert RequestError(ErrorKind.DISCONNECTED, aborted=True).label == "aborted:disconnected"
    assert RequestError(ErrorKind.UPSTREAM, detail="ClientOSError").label == "ClientOSError"
    assert (
        RequestError(ErrorKind.UPSTREAM, aborted=True, detail="ClientOSError").label
        == "aborted:ClientOSError"
    )
    assert RequestError(ErrorKind.UPSTREAM).label == "upstream"


def test_a_swap_replaces_config_cache_and_generation_in_one_snapshot() -> None:
    holder = PolicyHolder(CONFIG)
    first = holder.snapshot
    assert (first.config, first.generation, holder.generation) == (CONFIG, 1, 1)
    assert first.verdicts.policies is CONFIG
    other = load_policy_text("routes:\n  - path: /x/**\n    origins: '*'\n")
    assert holder.swap(other) == 2
    second = holder.snapshot
    assert second is not first and first.generation == 1  # the old snapshot is untouched
    assert (second.config, second.generation, holder.current) == (other, 2, other)
    assert second.verdicts.policies is other and second.verdicts is not first.verdicts
