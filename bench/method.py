"""The method section of docs/performance.md, also stored in bench/results.json."""

__all__ = ["METHOD"]

METHOD: dict[str, str] = {
    "processes": (
        "Every scenario run is a fresh Python process (bench/child.py) holding the engine's "
        "worker and its client; durable_ext talks to one private Azurite that the suite starts "
        "on free ports (disk persistence in a temporary folder) and shares across runs, each run "
        "on a task hub of its own that is deleted afterwards. DBOS gets a fresh SQLite file per "
        "run; durabletask's in-memory backend lives and dies with the process."
    ),
    "warm-up": (
        "Before the measured run each engine runs a little of every shape (a 3-step chain, a "
        "3-wide fan-out, 2 events, 2 latency runs), so connections, imports and caches are warm."
    ),
    "timing": (
        "Wall time runs from just before the first client call of the scenario to the moment "
        "the client saw the last orchestration complete (time.perf_counter). durable_ext's "
        "client polls status every 10 ms (single instance), asks the Instances table for any "
        "Pending/Running instance every 50 ms (HelloCities), and polls every 5 ms for latency; "
        "DBOS waits on its workflow handles; durabletask on its server-side wait. The client "
        "sees an orchestration complete once its final checkpoint has written history and the "
        "Instances row; the deletes of the messages that checkpoint consumed are issued after "
        "that and are not in the time (nor, when they finish after the client noticed, in the "
        "CPU and request counts). That is one episode's deletes per orchestration: for the "
        "single-orchestration scenarios the last one's, for HelloCities only those of the "
        "orchestrations that finish last (the others' overlap the run), for latency each run's, "
        "overlapping the next run."
    ),
    "cpu": (
        "CPU seconds of the engine process over the scenario (getrusage: all threads, user + "
        "system), which for DBOS includes SQLite and for durabletask its in-memory backend. For "
        "durable_ext Azurite's CPU over the same stretch is reported apart (/proc/PID/stat). "
        "`other` is the busy CPU of the rest of the machine over the stretch (/proc/stat): load "
        "that the figures did not cause but had to share two cores with."
    ),
    "episode cost": (
        "CPU per episode along a long cached chain (bench/episode.py, a fresh process holding "
        "one durable_ext.Runtime on the suite's Azurite): a chain orchestration calls one no-op "
        "activity per step, and each call stamps the process's CPU time (time.process_time: "
        "worker, client and every thread) and the wall clock. Between two consecutive calls the "
        "worker runs exactly one episode (result handed over, episode, checkpoint, next work "
        "item, activity), so the differences are the CPU per episode. A window of episodes is "
        "measured from each position in the chain; a window beyond step 0 starts from a chain "
        "seeded to that step (as tests/worker/test_episode_cost.py does): advanced in memory "
        "with the engine's own episode code, its history written to the hub as the worker "
        "writes it, the executor and its HistorySummary handed to the worker's instance cache, "
        "and the last result sent through the control queue; from there on it is the real "
        "worker. Each position is measured once per round on a fresh instance (as many rounds "
        "as runs) and the samples are pooled. The engine alone is timed while advancing a chain "
        "in memory (thread CPU of continue_episode plus the summary update per cached episode, "
        "and the median of three full replays of the history at each position: a cache miss's "
        "engine work, without its history read)."
    ),
    "memory": (
        "Peak RSS is VmHWM of the engine process, reset (clear_refs) just before the scenario "
        "started, so it is the peak during the scenario. Idle-worker RSS is VmRSS of a "
        "separate worker process (bench/idle.py)."
    ),
    "requests": (
        "durable_ext's storage requests are counted through the connection's client options "
        "(bench/counting.py): a request watcher whose hooks the SDK clients carry "
        "(raw_request_hook/raw_response_hook) "
        "(the Azure Storage SDKs ignore azure-core's per_call_policies: they build their "
        "pipelines from a fixed policy list) and whose lean REST transports (the engine's hot "
        "path for queue messages and table rows) report every HTTP attempt to its request "
        "observer. Both run once per HTTP attempt, so every request that reaches Azurite is "
        "counted, polling and the client's own calls included; receives that return no message "
        "are counted apart. DBOS's SQL statements are counted with SQLAlchemy's "
        "before_cursor_execute event."
    ),
    "floor": (
        "The physical floor (bench/floor.py) times the raw storage calls of one orchestration "
        "step on the same Azurite with no engine, in DTFx order: send work item, receive it, "
        "send result, delete work item, receive result, write the history row under the "
        "sentinel ETag (one table transaction: upsert + merge-if-match), merge Instances, "
        "delete result; the handoff shape (both messages sent invisible and deleted by their "
        "pop receipts, no receives); and the engine's own minimal step (work item sent "
        "invisible, result handed over in memory, history transaction, work item deleted). "
        "The DTFx and handoff shapes are timed both through the Azure SDK's aio clients and "
        "through the lean REST path (durable_ext.storage.rest) the engine uses, in the same "
        "run, with this process's CPU per step (time.process_time around the loop) and "
        "Azurite's. `× floor` is an engine's time per activity (or event, or latency run) "
        "divided by the DTFx step's time on the lean path (the SDK's in results without it): "
        "1.0 means one raw DTFx step's worth of time with the requests made as cheaply as the "
        "engine makes them."
    ),
    "statistics": (
        "Figures are medians over the runs (3 unless the results say otherwise); latency p50 and "
        "p99 are the medians of each run's nearest-rank percentiles. Runs are interleaved (run 1 "
        "of everything, then run 2 ...) and the engines' order rotates between runs. The floor "
        "is the median of as many runs. To stay within `make bench`'s 15 minutes, the levers "
        "(switched off one at a time through WorkerOptions, each on the scenarios it matters "
        "for, compared with the main runs' medians), the chain lengths with the cache on and "
        "off, the idle-memory measurement and the two cProfile runs (slower; used only for "
        "where the CPU goes) are one run each; their counts (replays, requests, memory) do not "
        "depend on timing, their times do."
    ),
    "storage sensitivity": (
        "After the main scenario runs, the suite starts a second Azurite with "
        "--inMemoryPersistence (same helper, free ports, a folder in the temporary directory; "
        "stopped afterwards; the main Azurite stays up, idle) and runs durable_ext's "
        "HelloCities, sequential and latency scenarios once each on it, at the same sizes and "
        "the same way as the main runs. Only the storage medium differs: the disk Azurite "
        "appends every message and row to extent files through Node's thread pool, the "
        "in-memory one keeps them in memory. The headline figures stay on disk; the comparison "
        "(one run against the main runs' medians, so expect a few percent of noise) shows how "
        "much of them is Azurite's persistence rather than the engine. Left out when the whole "
        "suite runs with --azurite-in-memory."
    ),
    "correctness": (
        "Every run checks its orchestrations' outputs (the sums, the greetings); a run whose "
        "outputs are wrong is marked and its figures are not to be trusted. Nothing is mocked."
    ),
}
