"""Dataset mode: the real agent through the chat service, on the app's own lifespan (real checkpointer)."""

import asyncio
import hashlib
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog

from app import runtime as app_runtime
from app.config import Settings
from app.errors import AppError
from app.runtime import Runtime
from app.services import auth, tokens
from app.services import sessions as sessions_service
from app.services.chat.approvals import drop as drop_approval
from app.services.chat.events import Interrupted, TurnResult
from app.services.chat.requests import Resume, TurnRequest
from app.services.chat.turn import Claim, Turn
from app.services.memory_jobs import MemoryJobs
from app.services.tokens import TokenClaims
from evals.datasets import Case, Dataset
from evals.records import TurnRecord

log = structlog.get_logger(__name__)

MAX_APPROVALS = 3  # tool calls approved in one turn before it counts as stuck


@asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """What the service builds at start-up (migrations, pools, graph, memory) and a memory-job
    consumer, without an HTTP app; then closed."""
    async with app_runtime.open_runtime(settings) as runtime:
        jobs = MemoryJobs(runtime) if runtime.memory is not None else None
        runtime.memory_jobs = jobs
        if jobs is not None:
            jobs.start()
        try:
            yield runtime
        finally:
            if jobs is not None:
                await jobs.stop()


@dataclass(frozen=True)
class EvalUser:
    id: uuid.UUID
    claims: TokenClaims


def eval_email(run_id: str, case_id: str) -> str:
    """One address per run and case: the hash of the whole, case-sensitive id keeps ids that share a
    long prefix or differ only in case apart; the readable slug is only for whoever looks."""
    digest = hashlib.sha256(case_id.encode()).hexdigest()[:16]
    slug = re.sub(r"[^a-z0-9]+", "-", case_id.lower()).strip("-")[:20] or "case"
    return f"eval-{run_id}-{slug}-{digest}@evals.example.com"


async def create_user(rt: Runtime, run_id: str, case_id: str) -> EvalUser:
    """Signed up and given a login session by the auth services; no password check is needed for a
    user the evals just made (and none of the address-based lockout a real log-in is subject to)."""
    email = eval_email(run_id, case_id)
    async with rt.db.sessions() as session:
        user = await auth.register(session, rt.settings, email=email, password=secrets.token_urlsafe(24))
        await session.commit()
    pair = await tokens.open_login(rt.db.pool, rt.settings, user.id)
    return EvalUser(user.id, tokens.decode(pair.access_token, rt.settings, kind=tokens.ACCESS))


def _extraction_bound(rt: Runtime) -> float:
    """How long the memory jobs of a case may take: a slow local model reads mem0's 8k-token prompt
    for minutes, and the wait ends as soon as they are done anyway."""
    return rt.settings.llm_call_limit + 30.0


async def delete_user(rt: Runtime, user_id: uuid.UUID) -> None:
    if rt.memory_jobs is not None:
        await rt.memory_jobs.idle(_extraction_bound(rt))  # no extraction may land after the user is gone
    async with rt.db.sessions() as session:
        await auth.delete_account(session, user_id=user_id, lease_ttl=rt.lease_ttl)
        await session.commit()


async def _new_session(rt: Runtime, user_id: uuid.UUID, name: str) -> uuid.UUID:
    async with rt.db.sessions() as session:
        created = await sessions_service.create_session(session, user_id=user_id, name=f"eval {name}")
        await session.commit()
    return created.id


async def _recalled(rt: Runtime, thread_id: uuid.UUID) -> list[str]:
    """The memories the recall node put into this turn's context, read back from its checkpoint."""
    state = await rt.graph.aget_state({"configurable": {"thread_id": str(thread_id)}})
    return [str(m) for m in state.values.get("memories") or []]


async def _outcome(turn: Turn) -> TurnResult | Interrupted:
    try:
        return await turn.outcome()
    finally:
        await turn.abandon()


async def run_turn(rt: Runtime, user: EvalUser, session_id: uuid.UUID, record: TurnRecord) -> None:
    start = time.perf_counter()
    try:
        request = TurnRequest(record.user)
        turn = await Turn.begin(rt, user.claims, session_id=session_id, request=request)
        result = await _outcome(turn)
        for _ in range(MAX_APPROVALS):
            if not isinstance(result, Interrupted):
                break
            # The eval's user approves what the agent asks to do, as a person trusting it would.
            turn = await Turn.begin(
                rt,
                user.claims,
                session_id=session_id,
                request=request,
                claim=Claim(turn.run_id, "interrupted"),
                resume=Resume("approve"),
            )
            result = await _outcome(turn)
        record.latency_ms = (time.perf_counter() - start) * 1000
        if isinstance(result, Interrupted):
            await drop_approval(rt, turn.run_id, because="cancelled")
            record.error = f"the turn asked for approval more than {MAX_APPROVALS} times"
            return
        record.reply = result.reply
        record.tokens = result.input_tokens + result.output_tokens
        record.tool_calls = list(result.tool_calls)
        if rt.memory is not None:
            record.memories = await _recalled(rt, turn.lease.thread_id)
    except AppError as exc:
        record.latency_ms = (time.perf_counter() - start) * 1000
        record.error = f"{exc.error}: {exc.detail}"
    except Exception as exc:
        # A boundary: one broken turn is a failed `completed` check, not the end of a 50-case run.
        log.warning("evals.turn_failed", case_id=record.case_id, turn=record.index, exc_info=exc)
        record.latency_ms = (time.perf_counter() - start) * 1000
        record.error = f"{type(exc).__name__}: {exc}"


def _record(case: Case, index: int, history: list[dict[str, str]]) -> TurnRecord:
    turn = case.turns[index]
    return TurnRecord(
        case_id=case.id,
        index=index,
        category=case.category,
        session=turn.session,
        user=turn.user,
        history=list(history),
        expect=turn.expect,
    )


def _failed(case: Case, error: str, on_turn: Callable[[], None]) -> list[TurnRecord]:
    records = []
    for index in range(len(case.turns)):
        record = _record(case, index, [])
        record.error = error
        records.append(record)
        on_turn()
    return records


async def run_case(rt: Runtime, case: Case, *, run_id: str, on_turn: Callable[[], None]) -> list[TurnRecord]:
    """Each case gets a fresh user, deleted afterwards with everything of theirs. A case that cannot
    start is that case's failure (every turn errored), not the end of the run."""
    try:
        user = await create_user(rt, run_id, case.id)
    except Exception as exc:
        log.warning("evals.user_failed", case_id=case.id, exc_info=exc)
        return _failed(case, f"could not create the eval user: {type(exc).__name__}: {exc}", on_turn)
    records: list[TurnRecord] = []
    try:
        sessions: dict[str, uuid.UUID] = {}
        history: dict[str, list[dict[str, str]]] = {}
        previous: str | None = None
        for index, turn in enumerate(case.turns):
            record = _record(case, index, history.get(turn.session, []))
            try:
                if turn.session not in sessions:
                    sessions[turn.session] = await _new_session(rt, user.id, turn.session)
                    history[turn.session] = []
                if previous is not None and turn.session != previous and rt.memory_jobs is not None:
                    # Memories are extracted after each reply, in the background: a new session must
                    # find what the earlier ones said, as it would for a user coming back later.
                    await rt.memory_jobs.idle(_extraction_bound(rt))
            except Exception as exc:
                log.warning("evals.session_failed", case_id=case.id, turn=index, exc_info=exc)
                record.error = f"could not open the session: {type(exc).__name__}: {exc}"
            else:
                previous = turn.session
                await run_turn(rt, user, sessions[turn.session], record)
                history[turn.session] += [
                    {"role": "user", "content": turn.user},
                    {"role": "assistant", "content": record.reply},
                ]
            records.append(record)
            on_turn()
    finally:
        try:
            await delete_user(rt, user.id)
        except Exception as exc:
            # The run's database is the evals' own: a leftover user costs nothing but a row.
            log.warning("evals.user_not_deleted", case_id=case.id, exc_info=exc)
    return records


async def run_dataset(
    rt: Runtime, dataset: Dataset, *, concurrency: int, on_turn: Callable[[], None]
) -> list[TurnRecord]:
    run_id = uuid.uuid4().hex[:8]
    bound = asyncio.Semaphore(concurrency)

    async def one(case: Case) -> list[TurnRecord]:
        async with bound:
            return await run_case(rt, case, run_id=run_id, on_turn=on_turn)

    per_case = await asyncio.gather(*(one(case) for case in dataset.cases))
    return [record for records in per_case for record in records]
