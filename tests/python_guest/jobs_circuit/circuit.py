"""Enqueue on insert; the job marks the contacts; a schedule tick logs what it was given; a batch
marks each Py_Item__c with its chunk (an item named "trap" fails its chunk) and logs its summary."""

from circuit_sdk import (
    AsyncContext,
    TriggerContext,
    batch_execute,
    batch_finish,
    batch_start,
    job,
    jobs,
    log,
    records,
    schedule,
    trigger,
)


@trigger("Contact", "after_insert")
def ask_for_enrichment(ctx: TriggerContext) -> str:
    return jobs.enqueue("py_jobs", {"ids": [c["Id"] for c in ctx.new], "note": "from the trigger"})


@job
def enrich(ctx: AsyncContext) -> dict[str, object]:
    ids = ctx.payload["ids"]
    records.update("Contact", [{"Id": i, "Enriched__c": f"{ctx.payload['note']} at depth {ctx.depth}"} for i in ids])
    return {"enriched": len(ids)}


@schedule
def tick(ctx: AsyncContext) -> dict[str, object]:
    log.info(f"schedule {ctx.schedule} ticked at {ctx.tick} with {ctx.payload}")
    return {"schedule": ctx.schedule, "tick": ctx.tick}


@batch_start
def items(ctx: AsyncContext) -> str:
    return "SELECT Id, Name FROM Py_Item__c WHERE Name != null"  # the SDK answers {"query": ...}


@batch_execute
def mark(ctx: AsyncContext) -> dict[str, object]:
    if any(item["Name"] == "trap" for item in ctx.records):
        raise ValueError(f"chunk {ctx.chunk} holds a trap")
    records.update("Py_Item__c", [{"Id": item["Id"], "Seen__c": f"chunk {ctx.chunk}"} for item in ctx.records])
    return {"marked": len(ctx.records)}


@batch_finish
def summarise(ctx: AsyncContext) -> dict[str, int] | None:
    summary = ctx.summary or {}
    log.info(
        f"batch {ctx.batch_id}: {summary['records_processed']} processed, {summary['chunks_failed']} chunks failed"
    )
    return ctx.summary
