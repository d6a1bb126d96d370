"""A small dbt-like runner for ``dbt_like_sql/``: one ``SELECT`` per file, ``{{ ref('model') }}`` between them.

Every ``*.sql`` directly in the models directory is a model named after its file; ``analyses/`` holds
read-only queries (loaders), ``tests/`` data tests (queries returning the rows that break a rule). The
dependencies are parsed from the SQL with sqlglot (a model read without ``ref()`` is refused), values are
bound as DuckDB named parameters, and ``materialize_partition`` replaces one partition of a model's table
through the writer of the connection's store (``rec_assets.storage.tables``). Details:
docs/design.md, "The SQL model runner".
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import duckdb
import jinja2
import sqlglot
from sqlglot import exp

from rec_assets.storage.tables import replace_partition, stray_rows, writer_of

ANALYSES_DIR = "analyses"
TESTS_DIR = "tests"


class SqlModelError(ValueError):
    """A model file that cannot be run, with the file named."""


@dataclass(frozen=True)
class SqlModel:
    name: str
    path: Path
    template: str
    refs: tuple[str, ...]
    tables_read: tuple[str, ...]
    parameters: tuple[str, ...]
    description: str = ""

    @property
    def code_version(self) -> str:
        return hashlib.sha256(self.template.encode()).hexdigest()[:16]

    def render(self) -> str:
        return _render(self.template, self.path)


@dataclass
class MaterializeResult:
    model: str
    rows_inserted: int
    rows_replaced: int
    rendered_sql: str
    parameters: dict[str, object] = field(default_factory=dict)
    recreated_table: bool = False
    content_hash: str = ""


def _render(template: str, path: Path, refs: list[str] | None = None) -> str:
    def ref(name: str) -> str:
        if refs is not None:
            refs.append(name)
        return name

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    try:
        return env.from_string(template).render(ref=ref).strip().rstrip(";").strip()
    except jinja2.TemplateError as error:
        raise SqlModelError(f"{path}: template does not render: {error}") from error


def _description(template: str) -> str:
    lines = []
    for line in template.splitlines():
        if not line.startswith("--"):
            break
        lines.append(line[2:].strip())
    return " ".join(lines)


def parse_model(path: Path) -> SqlModel:
    template = path.read_text(encoding="utf-8")
    refs: list[str] = []
    rendered = _render(template, path, refs)
    try:
        statements = [s for s in sqlglot.parse(rendered, read="duckdb") if s is not None]
    except sqlglot.errors.ParseError as error:
        raise SqlModelError(f"{path}: does not parse as DuckDB SQL: {error}") from error
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise SqlModelError(f"{path}: a model is exactly one SELECT statement, found {len(statements)} statement(s)")
    statement = statements[0]
    cte_names = {cte.alias_or_name for cte in statement.find_all(exp.CTE)}
    tables = sorted({t.name for t in statement.find_all(exp.Table) if t.name and t.name not in cte_names})
    parameters = sorted({p.name for p in statement.find_all(exp.Placeholder) if p.name})
    return SqlModel(
        name=path.stem,
        path=path,
        template=template,
        refs=tuple(sorted(set(refs))),
        tables_read=tuple(tables),
        parameters=tuple(parameters),
        description=_description(template),
    )


def discover_models(directory: Path, sources: Iterable[str] = ()) -> dict[str, SqlModel]:
    """The models of a directory, checked: refs name a model or a source, no model read without ref()."""
    directory = Path(directory)
    models = {path.stem: parse_model(path) for path in sorted(directory.glob("*.sql"))}
    known = set(models) | set(sources)
    for model in models.values():
        unknown = [r for r in model.refs if r not in known]
        if unknown:
            raise SqlModelError(f"{model.path}: ref() to unknown model(s) {unknown}; known: {sorted(known)}")
        unreferenced = [t for t in model.tables_read if t in known and t not in model.refs]
        if unreferenced:
            raise SqlModelError(f"{model.path}: reads {unreferenced} without ref(), so the dependency would be lost")
    topological_order(models)
    return models


def discover_queries(directory: Path, kind: str) -> dict[str, SqlModel]:
    """Analyses (``kind=ANALYSES_DIR``) or data tests (``kind=TESTS_DIR``) of a models directory."""
    return {path.stem: parse_model(path) for path in sorted((Path(directory) / kind).glob("*.sql"))}


def upstream_models(model: SqlModel, models: Mapping[str, SqlModel]) -> list[str]:
    return [name for name in model.tables_read if name in models]


def topological_order(models: Mapping[str, SqlModel]) -> list[str]:
    graph = {name: set(upstream_models(model, models)) for name, model in models.items()}
    try:
        return list(TopologicalSorter(graph).static_order())
    except CycleError as error:
        raise SqlModelError(f"models depend on each other in a cycle: {' -> '.join(error.args[1])}") from error


def bind(model: SqlModel, values: Mapping[str, object]) -> dict[str, object]:
    missing = [name for name in model.parameters if name not in values]
    if missing:
        raise SqlModelError(f"{model.path}: no value for parameter(s) {missing}")
    return {name: values[name] for name in model.parameters}


def query(conn: duckdb.DuckDBPyConnection, model: SqlModel, values: Mapping[str, object]) -> duckdb.DuckDBPyRelation:
    """Run a model or analysis as a read-only query with its parameters bound."""
    return conn.execute(model.render(), bind(model, values))


def materialize_partition(
    conn: duckdb.DuckDBPyConnection,
    model: SqlModel,
    values: Mapping[str, object],
    partition_column: str = "scoring_week",
) -> MaterializeResult:
    """Replace the rows of one partition of ``model``'s table by the model's result, atomically."""
    if partition_column not in model.parameters:
        raise SqlModelError(f"{model.path}: a partitioned model must use the parameter ${partition_column}")
    rendered = model.render()
    parameters = bind(model, values)
    partition_value = values[partition_column]
    with writer_of(conn).transaction(conn, "_model_stage"):
        conn.execute("DROP TABLE IF EXISTS _model_stage")
        conn.execute(f"CREATE TEMP TABLE _model_stage AS {rendered}", parameters)
        stage_columns, content_hash = _checked_stage(conn, model, partition_column, partition_value)
        replaced, inserted, recreated = replace_partition(
            conn, model.name, "_model_stage", partition_column, partition_value, stage_columns
        )
    return MaterializeResult(
        model=model.name,
        rows_inserted=inserted,
        rows_replaced=replaced,
        rendered_sql=rendered,
        parameters=parameters,
        recreated_table=recreated,
        content_hash=f"{inserted}-{int(content_hash):016x}",
    )


def _checked_stage(conn: duckdb.DuckDBPyConnection, model: SqlModel, partition_column: str,
                   partition_value: object) -> tuple[list[str], int]:
    """Columns and content hash of the staged result, refused when rows fall outside the partition."""
    stage_columns = [row[0] for row in conn.execute("DESCRIBE _model_stage").fetchall()]
    if partition_column not in stage_columns:
        raise SqlModelError(f"{model.path}: the result has no {partition_column} column")
    stray = stray_rows(conn, "_model_stage", partition_column, partition_value)
    if stray:
        raise SqlModelError(f"{model.path}: {stray} row(s) fall outside partition {partition_value}")
    content_hash = conn.execute("SELECT coalesce(bit_xor(hash(s)), 0) FROM _model_stage AS s").fetchone()[0]
    return stage_columns, content_hash
