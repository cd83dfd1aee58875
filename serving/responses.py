"""What the Serve app answers, as pydantic models: the published OpenAPI schema is generated from them,
so a client generated from that schema reads these bodies."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    """Every refusal (4xx, 503) has this body."""

    error: str = Field(description="What was wrong, in words, naming the field where there is one.")


class ModelInfo(BaseModel):
    name: str | None = Field(description="Registered model name.")
    version: str
    alias: str = Field(description="champion or candidate: which role answered.")


class OodInfo(BaseModel):
    flags: list[str] = Field(description="Out-of-domain flags raised for this photo, e.g. night_time.")
    scores: dict[str, float] = Field(description="Each flag's score in [0, 1].")
    held: list[str] = Field([], description="Flags that kept this photo on the champion (a rollout that holds out-of-domain photos).")


class Prediction(BaseModel):
    request_id: str = Field(description="Id of the logged prediction.")
    label: str = Field(description="The room type, or `unsure` below the model's confidence threshold.")
    scores: dict[str, float] = Field(description="Probability per class.")
    model: ModelInfo
    stage: str = Field(description="Rollout stage at answer time: stable, shadow, limited, gradual, pause or full.")
    served_by: str = Field(description="champion or candidate.")
    ood: OodInfo


class BatchItemError(BaseModel):
    error: str
    status: int = Field(description="The status this photo alone would have been refused with.")


class BatchAnswer(BaseModel):
    results: list[Prediction | BatchItemError] = Field(description="One per image, in order: a prediction or an error.")


class LogHealth(BaseModel):
    pending: int
    written: int
    overflow: int
    write_errors: int
    rejected: int = Field(description="Records the database refused for their values, kept in the journal "
                                      "directory's rejected.jsonl (serving.predlog).")
    recovered: int


class ShadowHealth(BaseModel):
    inflight: int
    waiting: int
    dropped: int


class PhotoHealth(BaseModel):
    pending: int
    dropped: int


class Health(BaseModel):
    status: str = Field(description="ok, or no-model until a rollout state exists.")
    stage: str | None
    champion: str | None = Field(description="Champion version.")
    candidate: str | None = Field(description="Candidate version, during a rollout.")
    state_generation: int | None = Field(description="Generation of the rollout state being routed on.")
    state_held: int = Field(description="Polls at which a newer state waited for its champion to load.")
    state_read_errors: int = Field(description="Polls at which the rollout state could not be read (its database out "
                                               "of reach); the state read last is routed on meanwhile.")
    warm_errors: int = Field(description="New states whose models failed to warm up in time; routed on all the same "
                                         "unless the champion cannot load (then held).")
    log: LogHealth
    shadow: ShadowHealth
    photos: PhotoHealth
