"""Enqueue on insert; the job marks the contacts; a schedule tick logs what it was given."""

from circuit_sdk import AsyncContext, TriggerContext, job, jobs, log, records, schedule, trigger


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
