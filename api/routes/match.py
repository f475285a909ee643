"""Match routes: one need's top-k now, or a global batch assignment as a background job."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from sqlalchemy import select

from api.deps import EngineDep, Matcher_, Platform, Reader, SessionDep, SettingsDep, WritesDep
from api.matching import match_need
from api.schemas import BatchJobPublic, BatchRequest, MatchRequest, MatchResponse
from api.tables import BatchJobRow, NeedRow

router = APIRouter(prefix="/v1/match", tags=["match"])


@router.post("", response_model=MatchResponse, summary="Top-k resources for one need, stored as pending suggestions")
def match(body: MatchRequest, principal: Matcher_, session: SessionDep, engine: EngineDep, writes: WritesDep,
          settings: SettingsDep):
    if body.need is not None:
        if principal.role == "staff":
            raise HTTPException(status.HTTP_403_FORBIDDEN, "a staff key may match stored needs by need_id only")
        # Matched right here, below: not queued for matching on arrival as well.
        need, _ = writes.create(session, "needs", body.need.model_dump(), principal, {"ring": settings.initial_ring},
                                queue=False)
        need_id = need.id
    else:
        need_id = body.need_id
    matched = match_need(session, engine, need_id, body.k, settings.min_score, principal)
    writes.after_commit([])  # its suggestion.created event is on its way
    return {"suggestions": matched.suggestions, "min_score": matched.min_score,
            "below_min_score": matched.below_min_score}


@router.post("/batch", response_model=BatchJobPublic, status_code=status.HTTP_202_ACCEPTED,
             summary="Start a global capacity-aware assignment over open needs (409 while one runs)")
def batch(body: BatchRequest, principal: Platform, request: Request, settings: SettingsDep, engine: EngineDep):
    filters = body.model_dump(exclude={"k", "min_score"}, exclude_none=True)
    min_score = settings.min_score if body.min_score is None else body.min_score  # None: the batch model's
    return request.app.state.batches.start(filters, body.k, min_score, principal)


@router.get("/batch/{job_id}", response_model=BatchJobPublic, summary="Status, progress and result of a batch job")
def batch_status(job_id: str, principal: Reader, session: SessionDep):
    job = session.get(BatchJobRow, job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"batch job {job_id!r} not found")
    if not principal.limited:
        return job
    # A limited key sees the unmatched needs of its own scope only; the counts stay district-wide.
    public = BatchJobPublic.model_validate(job).model_dump()
    unmatched = public["result"].get("unmatched_needs") or {}
    own = set(session.scalars(select(NeedRow.id).where(NeedRow.id.in_(list(unmatched)),
                                                       NeedRow.grid.in_(sorted(principal.grids)))))
    public["result"]["unmatched_needs"] = {need: why for need, why in unmatched.items() if need in own}
    return public
