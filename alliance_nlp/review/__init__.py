"""Review app for trainers and coders: correct the classifier's tags on analysed sessions in a local web
app; the corrections (RESULTS/corrections.jsonl, `store`) feed `alliance-nlp review-agreement` and
`alliance-nlp finetune`.

    alliance-nlp review RESULTS [--host 127.0.0.1] [--port N] [--reviewer NAME]

`app` holds the server (Starlette behind a token, Host, CSRF and size guard), `pages` the two HTML pages
(built from the session report's pieces), `data` what the JSON API says about a session, `store` the
corrections file and `agreement` the kappa reports. Starlette and uvicorn are imported only by `app`.
"""

from .store import CORRECTIONS_FILE, CorrectionStore, make_record, read_corrections

__all__ = ["CORRECTIONS_FILE", "CorrectionStore", "make_record", "read_corrections"]
