"""The logging of `safecredit serve`: its configuration and formatter."""

from __future__ import annotations

import logging
import time
from typing import Any


class SecondFormatter(logging.Formatter):
    """`logging.Formatter` with `%(asctime)s` made once per second: the access log writes a line
    per call, and `time.localtime` + `strftime` for each was a few percent of the hot route. The
    text is the default formatter's (`2026-12-04 13:05:33,123`)."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self._second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        cached = self._second  # one tuple, replaced whole: safe from any thread
        if cached[0] != second:
            cached = self._second = (second, time.strftime(self.default_time_format, self.converter(second)))
        return self.default_msec_format % (cached[1], record.msecs)


#: logging for `safecredit serve`: uvicorn's own logs and the service's access log, ID numbers masked
LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_ids": {"()": "safecredit.api.masking.MaskIdNumbers"}},
    "formatters": {
        "plain": {
            "()": "safecredit.api.logformat.SecondFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
        }
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["mask_ids"],
            "stream": "ext://sys.stderr",
        }
    },
    "loggers": {
        "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        "safecredit": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}
