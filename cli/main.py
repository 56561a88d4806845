"""`selftrain`: run a flow from a preset with `--set key=value` overrides.

Bad input (unknown key, malformed YAML, unknown model spec, unreachable endpoint, missing
data package) is checked before the flow starts and reported as one line, exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.paths import configure_prefect

if TYPE_CHECKING:
    from core.config import CurateConfig, ImagineConfig, PersonaConfig, SelfTalkConfig
    from flows.pipeline_config import PipelineConfig
    from roleplay.config import EvalConfig, RLConfig, RolePlayConfig, SimulateConfig
    from models.bootstrap_config import BootstrapConfig
    from models.warm_start import WarmStartConfig

EXIT_USER_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    from core.config import knobs

    parser = argparse.ArgumentParser(prog="selftrain", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        if command.arguments:
            command.arguments(commands.add_parser(name, help=command.help, description=command.description or command.help))
            continue
        keys = knobs(command.config_class())
        sub = commands.add_parser(name, help=command.help, description=command.help, formatter_class=argparse.RawDescriptionHelpFormatter,
                                  epilog="config keys (--set key=value; defaults before the preset):\n  " + "\n  ".join(keys))
        sub.add_argument("--preset", default=command.preset, help=f"preset name in configs/ or a YAML path (default: {command.preset})")
        sub.add_argument(
            "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
            help="override a config key, e.g. --set n_tasks=20 --set agent.spec=openai:gpt-4o-mini (repeatable)",
        )
    return parser


def _cache_arguments(cache: argparse.ArgumentParser) -> None:
    actions = cache.add_subparsers(dest="action", required=True)
    for name, help_text in (("ls", "list entries with size and days since last use"),
                            ("prune", "remove the entries not used for --older-than days")):
        sub = actions.add_parser(name, help=help_text)
        sub.add_argument("--runs-dir", default="runs", help="the runs folder to include (default: runs)")
        sub.add_argument("--kind", dest="kinds", action="append", metavar="KIND",
                         help="models, adapters, datasets, runs or results (Prefect's stored task results); "
                              "repeatable; default: all")
        if name == "prune":
            sub.add_argument("--older-than", type=float, required=True, metavar="DAYS")
            sub.add_argument("--dry-run", action="store_true", help="list what would go, remove nothing")


def _ops_arguments(ops: argparse.ArgumentParser) -> None:
    actions = ops.add_subparsers(dest="action", required=True)
    up = actions.add_parser("up", help="start a Prefect server and a process worker (pool `local`) in the background")
    up.add_argument("--port", type=int, default=4200)
    deploy = actions.add_parser("deploy", help="register prefect.yaml's deployments (all, or --name ...)")
    deploy.add_argument("--name", dest="names", action="append", metavar="DEPLOYMENT")
    run = actions.add_parser("run", help="trigger a deployment's run with --set overrides of its parameters")
    run.add_argument("deployment", help="a deployment name from prefect.yaml, e.g. pipeline-embedded")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a parameter: `n_tasks=5` sets cfg.n_tasks; `base.spec=...` a flow parameter")
    run.add_argument("--wait", action="store_true", help="wait for the run to finish and print its final state")
    actions.add_parser("status", help="what runs, what is deployed, the next scheduled runs")
    actions.add_parser("down", help="stop the worker, then the server")


def _export_arguments(export: argparse.ArgumentParser) -> None:
    export.add_argument("folder")
    export.add_argument("--to", required=True, metavar="URL")


def format_table(rows: list[dict[str, str]]) -> str:
    width = max(len(r["metric"]) for r in rows)
    return "\n".join(f"  {r['metric']:<{width}}  {r['value']}" for r in rows)


def print_run(title: str, report) -> None:
    """A data-making run's summary: its title, metric table, datasets with row counts, run folder."""
    print(f"\n{title}")
    print(format_table(report.summary))
    print(f"  datasets: {', '.join(f'{k} ({v} rows)' for k, v in report.counts.items())}")
    print(f"  run folder: {report.run_dir}")


def _check_roles(cfg: RolePlayConfig) -> None:
    """What a role-play run needs before it starts: the data package and the models."""
    from envs.toolwoz.data import package_file
    from models.loading import check_model
    from roleplay.users import check_user

    package_file("data/dataset.zip")
    check_model(cfg.agent)
    if cfg.user != cfg.agent:
        check_user(cfg.user)


def evaluate(cfg: EvalConfig) -> None:
    _check_roles(cfg)

    from flows.evaluate import evaluate as evaluate_flow
    from envs.registry import domain
    from tasks.evaluation import metrics_table

    report = evaluate_flow(cfg)
    print(f"\n{domain(cfg.benchmark).title} {cfg.split}: agent {cfg.agent.spec} vs user {cfg.user.spec}")
    print(format_table(metrics_table(report)))
    print(f"  dialogues: {'read from the cache' if report.cached else 'simulated'}")
    print(f"  run folder: {report.run_dir}")


def bootstrap(cfg: BootstrapConfig) -> None:
    from envs.toolwoz.data import package_file

    package_file("data/dataset.zip")

    from flows.bootstrap import bootstrap as bootstrap_flow

    print(f"\nembedded model: {bootstrap_flow(cfg)}")


def warm_start(cfg: WarmStartConfig) -> None:
    from envs.toolwoz.data import package_file
    from models.gguf import smollm2_gguf

    package_file("data/dataset.zip")
    smollm2_gguf()

    from flows.bootstrap import warm_start as warm_start_flow

    model_dir = warm_start_flow(cfg)
    spec = "smollm2-toolwoz" if cfg == type(cfg)() else f"hf:{model_dir}"  # the spec names the default recipe's
    print(f"\nSmolLM2 warm-started on ToolWOZ: {model_dir}\nuse it as agent.spec={spec}")


def simulate(cfg: SimulateConfig) -> None:
    from models.loading import check_model

    _check_roles(cfg)
    if cfg.personas.rewrite is not None:
        check_model(cfg.personas.rewrite)

    from flows.simulate import simulate as simulate_flow
    from envs.registry import domain

    report = simulate_flow(cfg)
    print_run(f"JOSH on {domain(cfg.benchmark).title} {cfg.split}: agent {cfg.agent.spec} vs user {cfg.user.spec}, "
              f"beam {cfg.beam_size}", report)


def selftalk(cfg: SelfTalkConfig) -> None:
    from envs.workflows import load_workflow
    from roleplay.selftalk import check_roles

    load_workflow(cfg.workflow)
    check_roles(cfg)

    from flows.selftalk import selftalk_flow

    report = selftalk_flow(cfg)
    print_run(f"Self-talk on workflow {cfg.workflow}: agent {cfg.agent.spec} vs client {cfg.user.spec}, "
              f"manager {cfg.manager.spec if cfg.manager else 'ROUGE-L'}", report)


def imagine(cfg: ImagineConfig) -> None:
    from models.loading import check_model

    check_model(cfg.model)

    from flows.imagine import imagine_flow

    report = imagine_flow(cfg)
    print(f"\nImagination engine: {cfg.model.spec} on: {cfg.task}")
    print(f"  datasets: {', '.join(f'{k} ({v} rows)' for k, v in report.counts.items())}")
    print(f"  run folder: {report.run_dir}")


def personas(cfg: PersonaConfig) -> None:
    from models.loading import check_model

    if cfg.rewrite is not None:
        check_model(cfg.rewrite)

    from flows.personas import personas as personas_flow
    from roleplay.personas import diversity

    kept = personas_flow(cfg)
    stats = diversity(kept, cfg.n - len(kept))
    print(format_table([{"metric": k, "value": str(v)} for k, v in stats.items()]))


def import_trees(cfg: SimulateConfig) -> None:
    """Only the config's agent prompt, SFT reward bar and folders are used."""
    from envs.toolwoz.data import package_file

    package_file("data/dataset.zip")

    from flows.import_trees import import_josh_trees

    report = import_josh_trees(cfg)
    trees = report.counts["dialogues"]
    print(f"\njosh-train's Llama-3 JOSH trees: {trees}, {report.full_reward} replay to full reward here")
    print(f"  datasets: {', '.join(f'{k} ({v} rows)' for k, v in report.counts.items())}")
    print(f"  run folder: {report.run_dir}")


def rl(cfg: RLConfig) -> None:
    _check_roles(cfg)

    from flows.rl import rl as rl_flow

    adapter = rl_flow(cfg)
    print(f"\nRL adapter ({adapter.steps} steps, {adapter.rows} dialogues{', cached' if adapter.cached else ''}): "
          f"{adapter.path}\nevaluate it with --set agent.adapter={adapter.path}")


def curate(cfg: CurateConfig) -> None:
    from models.loading import check_model
    from quality.suites import load_suite
    from tasks.curation import source_file

    source_file(cfg.source)
    for suite in cfg.suites:
        load_suite(suite)
    if cfg.judge is not None:
        check_model(cfg.judge)

    from flows.curate import curate as curate_flow

    report = curate_flow(cfg)
    print(f"\ncurated {cfg.source}: {report.counts['kept']} of {report.counts['dialogues']} dialogues kept")
    width = max((len(r["reason"]) for r in report.funnel + report.batch_checks), default=0)
    for r in report.funnel:
        print(f"  {r['suite']:<9} {r['reason']:<{width}}  {r['severity']:<8}  failing {r['failing rows']:>6}  "
              f"left {r['rows left']:>6}  {r['gates']}")
    for r in report.batch_checks:
        print(f"  batch     {r['reason']:<{width}}  {r['severity']:<8}  {r['observed']} ({r['expected']}): {r['result']}")
    print(f"  datasets: {', '.join(f'{k} {v}' for k, v in report.counts.items())}")
    print(f"  Data Docs: {report.data_docs}")
    print(f"  run folder: {report.run_dir}")


def pipeline(cfg: PipelineConfig) -> None:
    from envs.toolwoz.data import package_file
    from envs.workflows import load_workflow
    from models.loading import check_model
    from models.specs import parse_spec, weights_source
    from quality.suites import load_suite
    from roleplay.selftalk import check_roles
    from roleplay.users import check_user

    package_file("data/dataset.zip")
    check_model(cfg.agent)
    if parse_spec(cfg.agent.spec)[0] == "openai":
        weights_source(cfg.agent)  # says: an API model cannot be trained here
    if cfg.source == "selftalk":
        load_workflow(cfg.selftalk.workflow)
        check_roles(cfg.stage("selftalk"))
    else:
        check_user(cfg.user)
    if cfg.source == "imagine":
        check_model(cfg.imagine.model)
    for suite in cfg.suites:
        load_suite(suite)

    from flows.pipeline import pipeline as pipeline_flow

    report = pipeline_flow(cfg)
    rows = report.table
    print(f"\nself-training: agent {cfg.agent.spec} vs user {cfg.user.spec}, source {cfg.source}")
    if rows:
        widths = {k: max(len(k), *(len(r[k]) for r in rows)) for k in rows[0]}
        print("  " + "  ".join(k.ljust(w) for k, w in widths.items()))
        for r in rows:
            print("  " + "  ".join(r[k].ljust(w) for k, w in widths.items()))
    else:
        print("  not evaluated (imagined tasks have no environment); adapters: "
              + ", ".join(f"{k} {v}" for k, v in report.adapters.items()))
    if cfg.rounds > 1:
        print("  harvest: " + "; ".join(f"{name}: " + ", ".join(f"{k} {v}" for k, v in counts.items())
                                        for name, counts in report.harvest.items()))
    print(f"  stages: {', '.join(f'{k} ({v})' for k, v in report.stages.items())}")
    print(f"  run folder: {report.run_dir}")


def ops(args) -> None:
    from cli import ops as local

    if args.action == "up":
        url = local.up(args.port)
        print(f"Prefect server: {url.removesuffix('/api')} (UI); worker polling pool `{local.POOL}`; logs in {local.ops_dir()}")
        print(f"send command-line runs to it too: export PREFECT_API_URL={url}")
    elif args.action == "deploy":
        local.deploy(args.names)
        print(f"deployed on {local.api_url()}: {', '.join(local.status()['deployments'])}")
    elif args.action == "run":
        run = local.trigger(args.deployment, args.overrides, wait=args.wait)
        print(f"flow run {run.name}: {run.state.type.value}{f' ({run.state.message})' if run.state.message else ''}")
        print(f"  {local.api_url().removesuffix('/api')}/runs/flow-run/{run.id}")
        if args.wait and run.state.type.value != "COMPLETED":
            raise local.OpsError(f"flow run {run.name} ended {run.state.type.value}: its logs are on the page above")
    elif args.action == "status":
        for key, value in local.status().items():
            print(f"  {key}: {value if value is not None else 'not running'}")
    else:
        local.down()
        print("worker and server stopped")


def cache(args) -> None:
    from core import cache as store

    kinds = tuple(args.kinds or store.KINDS)
    if args.action == "ls":
        found = store.entries(args.runs_dir, kinds)
    else:
        pruned = store.prune(args.older_than, args.runs_dir, kinds, args.dry_run)
        found = pruned.removed
        print(f"{'would remove' if args.dry_run else 'removed'} {len(found)} entries, {sum(e.bytes for e in found) / 1e6:.1f} MB")
        if pruned.in_use:
            print(f"kept {len(pruned.in_use)} older entries that running commands have used since they began "
                  f"(process {', '.join(map(str, pruned.users))})")
    if args.action == "ls" and not found:
        print(f"nothing kept under {store.cache_dir()} or {args.runs_dir}")
    for e in found:
        print(f"  {e.kind:<8}  {e.bytes / 1e6:>9.1f} MB  {e.age_days:>6.1f} days  {e.path}")


def export(args) -> None:
    from core.export import export as copy

    print(f"copied {args.folder} to {copy(args.folder, args.to)}")


@dataclass(frozen=True)
class Command:
    """One `selftrain` command: what it runs and its help; a flow command's config class and default preset, or
    the arguments of one that runs no flow."""

    run: Callable
    help: str
    config: str | None = None  # "module:Class", imported when the parser is built
    preset: str | None = None
    arguments: Callable[[argparse.ArgumentParser], None] | None = None
    description: str | None = None

    def config_class(self):
        module, _, name = self.config.partition(":")
        return getattr(importlib.import_module(module), name)


COMMANDS = {
    "evaluate": Command(evaluate, "evaluate an agent model against a user simulator on ToolWOZ or tau-bench "
                                  "(benchmark=retail|airline)", "roleplay.config:EvalConfig", "embedded"),
    "bootstrap": Command(bootstrap, "train the embedded offline model on ToolWOZ's human training dialogues",
                         "models.bootstrap_config:BootstrapConfig"),
    "warm-start": Command(warm_start, "fine-tune SmolLM2 (from its PyPI wheel) on ToolWOZ's human training dialogues: "
                                      "the `smollm2-toolwoz` model spec", "models.warm_start:WarmStartConfig"),
    "simulate": Command(simulate, "JOSH role-play on ToolWOZ (or tau-bench retail) training tasks, harvested into SFT "
                                  "and preference datasets", "roleplay.config:SimulateConfig", "simulate"),
    "rl": Command(rl, "online RL (GRPO): groups of dialogues per training task against the customer and the tools, "
                      "from agent.adapter (an SFT adapter) or the base", "roleplay.config:RLConfig", "rl"),
    "personas": Command(personas, "draw simulated-user personas and report their diversity", "core.config:PersonaConfig"),
    "import-trees": Command(import_trees, "turn josh-train's shipped Llama-3 JOSH trees into SFT, DPO and KTO datasets",
                            "roleplay.config:SimulateConfig"),
    "curate": Command(curate, "filter a simulate or import-trees run with expectation suites (set source=<run folder>)",
                      "core.config:CurateConfig"),
    "selftalk": Command(selftalk, "Self-talk on a workflow (set workflow=<name or YAML path>): dialogues and an SFT set",
                        "core.config:SelfTalkConfig"),
    "imagine": Command(imagine, "the imagination engine: imagined, critiqued and revised dialogues from a task description",
                       "core.config:ImagineConfig"),
    "pipeline": Command(pipeline, "self-training end to end: simulate, curate, SFT, DPO (or KTO, GRPO), evaluate each against base",
                        "flows.pipeline_config:PipelineConfig", "pipeline"),
    "ops": Command(ops, "local operations: a Prefect server and worker, deployments, runs", arguments=_ops_arguments,
                   description="Run the flows as deployments on a local Prefect server (127.0.0.1), watched in its UI."),
    "cache": Command(cache, "list or remove models, adapters, datasets, run folders and stored task results", arguments=_cache_arguments,
                     description="What the project keeps on disk; age counts from an entry's last use."),
    "export": Command(export, "copy a run folder or adapter to an fsspec URL (S3, GCS, the Hub)", arguments=_export_arguments,
                      description="Copy a run folder or adapter to another disk, s3://, gs:// or the Hugging Face Hub "
                                  "(hf://<user>/<repo>, hf://datasets/<user>/<repo>; token from HF_TOKEN)."),
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_prefect()
    quiet_progress_bars()
    from core.errors import UserError

    untraced_user_errors()
    try:
        command = COMMANDS[args.command]
        if command.arguments:
            command.run(args)
        else:
            from cli.guard import watch_this_process
            from core.config import build_config

            cfg = build_config(command.config_class(), args.preset, args.overrides)
            watch_this_process()  # a flow's servers and workers end with this command, even on kill -9
            command.run(cfg)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted; finished stages are cached and will be reused", file=sys.stderr)
        return 130
    return 0


def quiet_progress_bars() -> None:
    """Redrawn ten times a second into a log file, progress bars bury the log (0.5 MB for one `make run`): when
    stderr is not a terminal, every tqdm bar (ours, transformers', datasets') redraws at most every 5 seconds.
    tqdm reads its `TQDM_*` defaults when first imported, so this runs before anything imports it."""
    if not sys.stderr.isatty():
        os.environ.setdefault("TQDM_MININTERVAL", "5")


class NoTraceback(logging.Filter):
    """Prefect logs a failed task's or flow's traceback; for a user's error (a bad file, a bad key) the message
    says everything, and the CLI prints it last, as one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        from core.errors import UserError

        if record.exc_info and isinstance(record.exc_info[1], UserError):
            record.exc_info, record.exc_text = None, None
        return True


NO_TRACEBACK = NoTraceback()


def untraced_user_errors() -> None:
    """On the loggers where task and flow runs log their failures (adding the same filter twice adds it once)."""
    for name in ("prefect.task_runs", "prefect.flow_runs"):
        logging.getLogger(name).addFilter(NO_TRACEBACK)


if __name__ == "__main__":
    sys.exit(main())
