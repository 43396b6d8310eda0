"""One pipeline's business date as one run sees it: the value every step of the day takes."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from autopo_pipelines.config import PipelineConfig, load_transform, transform_settings
from autopo_pipelines.day.state import DayState, Listing
from autopo_pipelines.layout import DataLayout
from autopo_pipelines.sources import Source, SourceError
from autopo_pipelines.sources.local import LocalFolderSource
from autopo_pipelines.storage import StoragePath
from autopo_pipelines.transform import DayContext, TransformDefinition


@dataclass(frozen=True)
class Day:
    """A pipeline, a date, the data root, the run working on it and the warehouse it loads into."""

    config: PipelineConfig
    layout: DataLayout
    date: dt.date
    # The Airflow run the day's state must come from; None: the latest attempt, whichever run made it.
    run_id: str | None = None
    # The warehouse (a libpq conninfo); None where the step needs none.
    conninfo: str | None = None

    def for_run(self, run_id: str | None) -> Day:
        return dataclasses.replace(self, run_id=run_id)

    @property
    def pipeline(self) -> str:
        return self.config.name

    @cached_property
    def state(self) -> DayState:
        return DayState(self.layout.intermediate(self.config.name, self.date))

    @cached_property
    def definition(self) -> TransformDefinition:
        definition: TransformDefinition = load_transform(self.config.transform)
        return definition

    @cached_property
    def settings(self) -> Any:
        return transform_settings(self.config)

    def listing(self) -> Listing | None:
        """The date's listing if the day's run wrote it (whichever run did, when run_id is None)."""
        listing = self.state.listing()
        if listing is None or (self.run_id is not None and listing.run_id != self.run_id):
            return None
        return listing

    def source(self) -> Source:
        return source_for(self.config, self.layout)

    @property
    def seeds(self) -> StoragePath:
        """Where the day's CSV files go."""
        return self.layout.resolve(self.config.output_dir, self.layout.seeds(self.config.name))

    def context(self) -> DayContext:
        return DayContext(
            pipeline=self.config.name, date=self.date, data_root=self.layout.root, warehouse_conninfo=self.conninfo
        )

    def describe(self) -> str:
        return f"{self.config.name} {self.date}"


def source_for(config: PipelineConfig, layout: DataLayout) -> Source:
    """The pipeline's source of files: a local folder, a GCS prefix or a Drive folder."""
    if config.source.kind == "gcs":
        from autopo_pipelines.sources.gcs import GcsSource  # the Google provider only when used

        return GcsSource(config.source.bucket, config.source.prefix, config.source.gcp_conn_id)
    if config.source.kind == "gdrive":
        from autopo_pipelines.sources.gdrive import GdriveSource  # the Google provider only when used

        return GdriveSource(config.source.folder_id, config.source.drive_id, config.source.gcp_conn_id)
    folder = layout.resolve(config.source.path, layout.inbox(config.name))
    if not isinstance(folder, Path):
        # An object-store data root has no inbox folder on this machine to list.
        raise SourceError(
            f"pipeline {config.name}: a local source needs a local folder, and the data root is {layout.root}; "
            "set source.path to an absolute folder, or use a gcs or gdrive source"
        )
    return LocalFolderSource(folder)
