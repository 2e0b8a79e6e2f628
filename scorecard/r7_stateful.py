"""R7 (b): a hypothesis RuleBasedStateMachine of deliver / duplicate / reorder / crash / replay / expire
against the real ingest service and the real workflow steps, in-process with the fakes of tests/fakes.py.

The world mirrors the deployed wiring: a signed Standard Webhooks delivery goes through `IngestService`
(verification, normalisation, dedupe on the delivery id, publish); a published event waits in the inbox
(any order: the bus and SQS do not order); the starter runs the workflow named after the event id unless
an execution of that name exists; the workflow runs the same step functions the Lambda handlers call, in
the state machine's order (provision engagement; propagate amendment with its guard and the superseded
choice). A crash stops a workflow after a step's side effect (the execution fails into the exceptions
list, as the Catch does); replay restarts it as attempt N+1 under a new name (as `pssync dlq replay`
does); expire drops the dedupe records (the 4-day window passed), so a late duplicate is published again
with the same event id. A step's TransientDownstreamError (an amendment before its booking is recorded)
puts the event back in the inbox: the state machine's retry.

Invariants after every step: per contract, amendments stored once each and in increasing order, no event
caused two versions, the head is at least the newest amendment whose workflow succeeded, no command sent
twice. At the end of each run every delivery is delivered, the inbox drained and every exception replayed:
then the head holds the newest amendment delivered, the revenue schedule is at the head version, and each
booking was activated once (one EngagementActivated event id).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, get_state_machine_test, invariant, precondition, rule

from pssync.connectors.shadow import ShadowConnector
from pssync.errors import TransientDownstreamError
from pssync.ingest.service import IngestService
from pssync.local.webhook_client import standard_webhook_headers
from pssync.model.events import (
    ContractAmended,
    ContractBooked,
    EngagementActivated,
    EventEnvelope,
    SourceSystem,
)
from pssync.model.sources import SignatureScheme, SourceConfig, SourceRegistry
from pssync.ports import SigningSecrets
from pssync.sources.request import RawRequest
from pssync.workflows import amendment, provision
from pssync.workflows.provision import CONTRACT, REVENUE_SCHEDULE
from scorecard import senders as s
from scorecard.context import fresh_secrets
from tests.fakes import (
    FakeSecrets,
    FixedClock,
    InMemoryDeduplicator,
    InMemoryDeliveryLog,
    InMemoryRawPayloads,
    InMemoryVersionStore,
    RecordingPublisher,
)

VERSIONS = 5
PROVISION_STEPS = 6
AMENDMENT_STEPS = 7


class Crash(Exception):
    """The container died after a step's side effect, before the step's result was recorded."""


@dataclass
class Delivery:
    delivery_id: str
    contract_id: str
    k: int  # 0: the booking; 1..VERSIONS: amendment k
    body: bytes


@dataclass
class Stats:
    runs: int = 0
    steps: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)


STATS = Stats()


class World:
    """One deployment, in memory."""

    def __init__(self, secret: str) -> None:
        self.clock = FixedClock()
        self.secret = secret
        self.bus = RecordingPublisher()
        self.dedupe = InMemoryDeduplicator()
        source = SourceConfig(
            name="crm",
            scheme=SignatureScheme.STANDARD_WEBHOOKS,
            system=SourceSystem.SALESFORCE,
            secret_id="crm",  # noqa: S106 - the id of the secret, not a secret
        )
        self.ingest = IngestService(
            SourceRegistry([source]),
            FakeSecrets({"crm": SigningSecrets(secret)}),
            self.bus,
            self.dedupe,
            self.clock,
            InMemoryRawPayloads(),
        )
        self.store = InMemoryVersionStore()
        self.log = InMemoryDeliveryLog()
        self.connector = ShadowConnector(self.log)
        self.emitted = RecordingPublisher()
        self.taken = 0  # bus events moved to the inbox
        self.inbox: list[EventEnvelope] = []
        self.executions: dict[str, str] = {}  # name -> SUCCEEDED | FAILED
        self.exceptions: list[tuple[EventEnvelope, int]] = []  # (event, attempt)
        self.succeeded_k: dict[str, int] = {}  # contract -> newest amendment k whose workflow succeeded

    @property
    def now(self) -> datetime:
        return self.clock.now()

    def send(self, delivery: Delivery) -> None:
        headers = standard_webhook_headers(
            self.secret, delivery.body, delivery_id=delivery.delivery_id, timestamp=int(self.now.timestamp())
        )
        request = RawRequest(
            method="POST",
            url="/webhooks/crm",
            body=delivery.body,
            headers={k: [v] for k, v in headers.items()},
        )
        self.ingest.ingest("crm", request)
        self.inbox.extend(self.bus.published[self.taken :])  # the bus routes to the inbox
        self.taken = len(self.bus.published)

    def start(self, event: EventEnvelope, attempt: int = 1, crash_after: int | None = None) -> bool:
        """The starter, then the workflow; False if the event must wait (a transient error: retried)."""
        name = f"{type(event).__name__}-{event.event_id}" + (f"-attempt-{attempt}" if attempt > 1 else "")
        if name in self.executions:
            return True  # the execution exists: a redelivery finds it
        try:
            if isinstance(event, ContractBooked):
                self._provision(event, crash_after)
            elif isinstance(event, ContractAmended):
                self._amend(event, crash_after)
        except TransientDownstreamError:
            return False  # retried by the state machine: the event stays queued, no execution recorded
        except Crash:
            self.executions[name] = "FAILED"
            self.exceptions.append((event, attempt))
            return True
        self.executions[name] = "SUCCEEDED"
        if isinstance(event, ContractAmended):
            contract_id = event.data.contract.contract_id
            self.succeeded_k[contract_id] = max(self.succeeded_k.get(contract_id, 0), _k_of(event))
        return True

    def _provision(self, event: ContractBooked, crash_after: int | None) -> None:
        step = _Steps(crash_after)
        provision.validate_master_data(event)
        step.done()
        contract = provision.record_contract_version(event, self.store, self.now)
        step.done()
        terms = event.data.contract
        psa = provision.send(
            self.connector, provision.provision_project_command(event, terms, contract.version), self.now
        )
        step.done()
        erp = provision.send(
            self.connector, provision.billing_schedule_command(event, terms, contract.version), self.now
        )
        step.done()
        revenue = provision.build_revenue_schedule(event, contract, self.store, self.now)
        step.done()
        activated = provision.engagement_activated(event, contract, psa, erp, revenue, self.now)
        provision.emit_engagement_activated(self.emitted, activated)
        step.done()

    def _amend(self, event: ContractAmended, crash_after: int | None) -> None:
        step = _Steps(crash_after)
        guard = amendment.guard_contract_version(event, self.store)
        step.done()
        if guard.action == "ignore":
            return
        recorded = amendment.record_amended_version(event, self.store, self.now)
        step.done()
        if recorded.superseded is not None:
            return
        classification = amendment.classify_modification(self.store, recorded)
        step.done()
        terms = event.data.contract
        psa = provision.send(
            self.connector, provision.provision_project_command(event, terms, recorded.version), self.now
        )
        step.done()
        erp = provision.send(
            self.connector, provision.billing_schedule_command(event, terms, recorded.version), self.now
        )
        step.done()
        revenue = amendment.remeasure_revenue(event, recorded, self.store, self.now)
        step.done()
        propagated = amendment.amendment_propagated(
            event, recorded, classification, psa, erp, revenue, self.now
        )
        self.emitted.publish([propagated])
        step.done()


@dataclass
class _Steps:
    crash_after: int | None
    count: int = 0

    def done(self) -> None:
        self.count += 1
        if self.crash_after is not None and self.count == self.crash_after:
            raise Crash(f"crashed after step {self.count}")


def _k_of(event: ContractAmended) -> int:
    return int(event.data.contract.title.rsplit(" ", 1)[1])


def _stored_ks(store: InMemoryVersionStore, contract_id: str) -> list[int]:
    return [int(v.body["terms"]["title"].rsplit(" ", 1)[1]) for v in store.history(CONTRACT, contract_id)[1:]]


class IngestAndWorkflows(RuleBasedStateMachine):
    """deliver / duplicate / reorder / crash / replay / expire (`secret`, `prefix`: set for each run)."""

    secret = ""
    prefix = "R7"

    def __init__(self) -> None:
        super().__init__()
        STATS.runs += 1
        self.world = World(self.secret)
        self.outbox: list[Delivery] = []  # created, not yet sent
        self.sent: list[Delivery] = []
        self.contracts: list[str] = []
        self.amended: dict[str, set[int]] = {}
        self.delivered_k: dict[str, int] = {}
        self.serial = 0

    def _count(self, name: str) -> None:
        STATS.steps[name] += 1

    # --- the senders -----------------------------------------------------------------------------

    @precondition(lambda self: len(self.contracts) < 3)
    @rule()
    def book(self) -> None:
        contract_id = f"{self.prefix}-{STATS.runs}-{len(self.contracts)}"
        self.contracts.append(contract_id)
        self.amended[contract_id] = set()
        body = s.dumps(s.booking_document(contract_id))
        self.outbox.append(Delivery(self._id(), contract_id, 0, body))
        self._count("book")

    @precondition(lambda self: bool(self.contracts))
    @rule(data=st.data())
    def amend(self, data: st.DataObject) -> None:
        contract_id = data.draw(st.sampled_from(self.contracts), label="contract")
        k = data.draw(st.integers(1, VERSIONS), label="k")
        title = f"{contract_id} amendment {k}"
        body = s.dumps(s.amendment_document(contract_id, f"2027-06-10T14:{k:02d}:00.000Z", title))
        self.amended[contract_id].add(k)
        # The same amendment again as a new message is allowed: only the version guard recognises it.
        self.outbox.append(Delivery(self._id(), contract_id, k, body))
        self._count("amend")

    @precondition(lambda self: bool(self.outbox))
    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        """Any created delivery, not the oldest: reorder."""
        index = data.draw(st.integers(0, len(self.outbox) - 1), label="outbox index")
        delivery = self.outbox.pop(index)
        self.world.send(delivery)
        self.sent.append(delivery)
        if delivery.k:
            self.delivered_k[delivery.contract_id] = max(
                self.delivered_k.get(delivery.contract_id, 0), delivery.k
            )
        self._count("deliver" if index == 0 else "deliver reordered")

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data())
    def duplicate(self, data: st.DataObject) -> None:
        """A sender's retry: the same delivery id and body, freshly signed."""
        self.world.send(data.draw(st.sampled_from(self.sent), label="sent delivery"))
        self._count("duplicate")

    @precondition(lambda self: bool(self.world.dedupe.records))
    @rule()
    def expire(self) -> None:
        """The dedupe window passed: every record is gone."""
        self.world.dedupe.records.clear()
        self._count("expire")

    # --- the workflows ---------------------------------------------------------------------------

    @precondition(lambda self: bool(self.world.inbox))
    @rule(data=st.data())
    def process(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(self.world.inbox) - 1), label="inbox index")
        event = self.world.inbox.pop(index)
        if not self.world.start(event):
            self.world.inbox.append(event)
        self._count("process")

    @precondition(lambda self: bool(self.world.inbox))
    @rule(data=st.data())
    def crash(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(self.world.inbox) - 1), label="inbox index")
        event = self.world.inbox.pop(index)
        steps = PROVISION_STEPS if isinstance(event, ContractBooked) else AMENDMENT_STEPS
        after = data.draw(st.integers(1, steps), label="crash after step")
        if not self.world.start(event, crash_after=after):
            self.world.inbox.append(event)
        self._count("crash")

    @precondition(lambda self: bool(self.world.exceptions))
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(self.world.exceptions) - 1), label="exception index")
        event, attempt = self.world.exceptions.pop(index)
        if not self.world.start(event, attempt=attempt + 1):
            self.world.exceptions.append((event, attempt))
        self._count("replay")

    def _id(self) -> str:
        self.serial += 1
        return f"msg_{self.prefix}_{STATS.runs}_{self.serial}"

    # --- invariants ------------------------------------------------------------------------------

    @invariant()
    def stored_once_in_order_and_never_behind(self) -> None:
        store = self.world.store
        for contract_id in self.contracts:
            history = store.history(CONTRACT, contract_id)
            ks = _stored_ks(store, contract_id)
            assert ks == sorted(set(ks)), f"{contract_id}: amendments stored as {ks}"
            causes = [v.caused_by_event_id for v in history]
            assert len(causes) == len(set(causes)), f"{contract_id}: an event caused two versions"
            newest_succeeded = self.world.succeeded_k.get(contract_id, 0)
            head_k = ks[-1] if ks else 0
            assert head_k >= newest_succeeded, (
                f"{contract_id}: head holds amendment {head_k}, older than {newest_succeeded} (succeeded)"
            )

    @invariant()
    def no_command_twice(self) -> None:
        keys = Counter((c.target, c.external_id, c.idempotency_key) for c in self.world.log.commands.values())
        assert all(n == 1 for n in keys.values()), keys

    def teardown(self) -> None:
        """Everything delivered, processed and replayed: then the end state must be exact."""
        world = self.world
        for delivery in list(self.outbox):
            world.send(delivery)
            if delivery.k:
                self.delivered_k[delivery.contract_id] = max(
                    self.delivered_k.get(delivery.contract_id, 0), delivery.k
                )
        self.outbox.clear()
        for _ in range(1000):  # passes over the inbox; a replay when a pass made no progress
            waiting = len(world.inbox)
            for event in [world.inbox.pop(0) for _ in range(waiting)]:
                if not world.start(event):
                    world.inbox.append(event)  # an amendment whose booking is not recorded yet
            if waiting and len(world.inbox) < waiting:
                continue
            if not world.exceptions:
                break
            event, attempt = world.exceptions.pop(0)
            world.start(event, attempt=attempt + 1)
        assert not world.inbox and not world.exceptions, "the workflows did not settle"
        activated: dict[str, set[str]] = {}
        for event in world.emitted.published:
            if isinstance(event, EngagementActivated):
                activated.setdefault(event.data.contract_id, set()).add(event.event_id)
        for contract_id in self.contracts:
            ks = _stored_ks(world.store, contract_id)
            head_k = ks[-1] if ks else 0
            assert head_k == self.delivered_k.get(contract_id, 0), (
                f"{contract_id}: head holds amendment {head_k}, newest delivered "
                f"{self.delivered_k.get(contract_id, 0)}"
            )
            head = world.store.head(CONTRACT, contract_id)
            revenue = world.store.head(REVENUE_SCHEDULE, contract_id)
            assert head is not None and revenue is not None
            assert revenue.body["contract_version"] == head.version, (
                f"{contract_id}: revenue at v{revenue.body['contract_version']}, head v{head.version}"
            )
            assert len(activated.get(contract_id, ())) == 1, f"{contract_id}: activated {activated}"


def run(
    seed: int, examples: int, steps: int, secret: str | None = None
) -> tuple[Stats, str | None, str | None]:
    """`examples` state machine runs of up to `steps` steps each: (stats, the first invariant violation,
    the first error a step raised that it must not), None where there was none."""
    global STATS
    STATS = Stats()
    IngestAndWorkflows.secret = secret or fresh_secrets()["crm"]["current"]
    IngestAndWorkflows.prefix = f"R7-{seed}"
    test: Any = get_state_machine_test(
        IngestAndWorkflows,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            print_blob=False,
            report_multiple_bugs=False,
            # No shrinking: a violation is reported as found (shrinking one took minutes), with its steps.
            phases=[Phase.explicit, Phase.generate],
        ),
    )
    hypothesis_seed(seed)(test)
    try:
        test()
    except AssertionError as violation:
        return STATS, _describe(violation), None
    except Exception as error:  # a step raised what it must not (or the code under test is broken)
        return STATS, None, f"{type(error).__name__}: {_describe(error)}"
    return STATS, None, None


def _describe(error: BaseException) -> str:
    notes = getattr(error, "__notes__", [])
    return f"{error}" + ("\n" + "\n".join(notes[-40:]) if notes else "")
