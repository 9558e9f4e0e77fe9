"""Fan-out/fan-in: run activities in parallel, wait for all of them, aggregate the results.

Start it with `POST /api/orchestrators/fan_out_fan_in` and a JSON body such as `{"count": 10}`.
"""

import durable_ext as df

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def fan_out_fan_in(context: df.DurableOrchestrationContext):
    request = context.get_input() or {}
    work_items = yield context.call_activity(get_work_items, request.get("count", 10))

    # Fan out: schedule every activity before waiting for any of them.
    tasks = [context.call_activity(process_work_item, item) for item in work_items]
    # Fan in: task_all completes when every task has, with the results in the same order.
    results = yield context.task_all(tasks)
    return sum(results)


@bp.activity_trigger(input_name="count")
def get_work_items(count: int) -> list[int]:
    return list(range(1, count + 1))


@bp.activity_trigger(input_name="item")
async def process_work_item(item: int) -> int:
    # Stands in for real work: I/O-bound activities can be `async def`; plain `def` ones run on
    # a thread pool, so they may block.
    return item * item
