"""The bottom floor: every error betavae raises on purpose (`errors`), config checks in one line (`config`), atomic
file writes and the cache location (`files`), headless matplotlib figures (`plotting`), path arguments for Hydra's
grammar (`cli`). It imports nothing of betavae's other folders."""
