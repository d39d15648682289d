"""The report and the batch index in a real browser (headless Chromium via Selenium and Debian's
chromedriver): no console errors, no network request but the file itself, a hostile transcript stays
text, an episode link focuses its utterance, filters and sorting work. Screenshots are kept in
out/test-artifacts/ for a person to look at.

Chromium comes from `scripts/install_browser.sh` (run by scripts/test.sh); where it cannot be installed
(no root, no apt) these tests skip and say so."""

import copy
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from alliance_nlp.ingest import read
from alliance_nlp.labels import LABELS
from alliance_nlp.outputs import write_outputs
from alliance_nlp.pipeline import Pipeline
from alliance_nlp.report import write_index

os.environ.setdefault("SE_AVOID_STATS", "true")  # Selenium Manager must not phone home (it is not used anyway)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (pip install -e '.[test]')")

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "out" / "test-artifacts"
BROWSER = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (BROWSER and DRIVER),
    reason="Chromium or chromedriver not found; scripts/install_browser.sh installs them (needs root and apt)",
)

HOSTILE_TEXT = '<script>alert("pwned")</script> "><img src=x onerror=alert(1)> </script><!--'
HOSTILE_NAME = '"><img src=y onerror=alert(2)>'
KEYWORDS = {
    "goal": ("goal", "want"),
    "task": ("agenda", "diary", "homework", "try"),
    "bond": ("thank", "sounds", "makes sense"),
    "rupture_withdrawal": ("don't know", "whatever", "fine"),
    "rupture_confrontation": ("pointless", "waste", "doesn't work", "<script"),
    "repair": ("sorry", "on me"),
}


def stub_classify(session):
    """Deterministic stand-in for the classifier (no model load in this module)."""
    for u in session.utterances:
        t = u.text.lower()
        u.probabilities = {lab: (0.8 if any(k in t for k in ks) else 0.04) for lab, ks in KEYWORDS.items()}
        u.markers = [lab for lab in LABELS if u.probabilities[lab] >= 0.5]
    session.provenance["classify"] = {"model": "keyword-stub"}
    return session


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A batch results folder: a normal session and a hostile one (script in the text and the names),
    each with report.html, and index.html."""
    out = tmp_path_factory.mktemp("results")
    prepare = Pipeline.from_names(["diarize"])
    aggregate = Pipeline.from_names(["aggregate"], provided={"turns", "roles", "markers"})
    base = stub_classify(prepare(read(ROOT / "data" / "examples" / "session_cbt.txt")))
    hostile = copy.deepcopy(base)
    hostile.id = "hostile</script><script>alert(3)</script>"
    hostile.turns[1].utterances[0].text = HOSTILE_TEXT
    hostile.turns[1].text = ""
    hostile.speakers[hostile.turns[1].speaker].name = HOSTILE_NAME
    write_outputs(aggregate(base), out / "cbt")
    write_outputs(aggregate(hostile), out / "hostile")
    (out / "batch_report.json").write_text(
        json.dumps(
            {
                "processed": 2,
                "failed": [{"file": "in/x<script>alert(4)</script>.txt", "error": "<img src=z onerror=alert(5)>"}],
            }
        )
    )
    write_index(out, clients={"session_cbt": ("client A", "1"), hostile.id: ("client A", "2")})
    return out


@pytest.fixture(scope="module")
def driver():
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = BROWSER
    profile = tempfile.mkdtemp(prefix="alliance-chromium-")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--metrics-recording-only",
        "--no-default-browser-check",
        "--hide-scrollbars",
        "--window-size=1280,1800",
        f"--user-data-dir={profile}",
    ):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    opts.set_capability("unhandledPromptBehavior", "ignore")  # an alert must stay visible to the test
    d = webdriver.Chrome(service=Service(DRIVER), options=opts)
    d.set_page_load_timeout(30)
    d.get("about:blank")  # let start-up pages settle before the tests read the logs
    yield d
    d.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _open(driver, path: Path) -> str:
    driver.get_log("browser"), driver.get_log("performance")  # drop what earlier pages logged
    url = path.resolve().as_uri()
    driver.get(url)
    driver.execute_script("return document.readyState")
    return url


def _no_alert(driver) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018


def _console_errors(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e.get("level") in ("SEVERE", "ERROR", "WARNING")]


def _requests(driver) -> set[str]:
    """URLs the browser requested since the last call, less its own chrome:// pages (the new-tab page
    that Chromium opens at start-up can still be logging when the test's page loads)."""
    urls = set()
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.add(msg["params"]["request"]["url"])
    return {u for u in urls if not u.startswith(("chrome://", "chrome-untrusted://"))}


def _screenshot(driver, name: str, tmp_path: Path) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    png = tmp_path / name
    driver.save_screenshot(str(png))
    shutil.copy(png, ARTIFACTS / name)
    return png


def test_report_in_chromium(driver, results, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url = _open(driver, results / "hostile" / "report.html")
    _no_alert(driver)
    assert _console_errors(driver) == []
    requested = _requests(driver)
    assert requested <= {url}, f"only the file itself is requested, not {requested - {url}}"
    assert driver.title == "Alliance report: hostile</script><script>alert(3)</script>"
    # the hostile text is on the page as text, and nothing it tried to inject exists
    assert HOSTILE_TEXT in driver.find_element(By.ID, "u-1").text
    assert HOSTILE_NAME in driver.find_element(By.ID, "transcript").text
    assert driver.execute_script("return document.images.length + document.querySelectorAll('[onerror]').length") == 0
    assert driver.execute_script("return document.scripts.length") == 2
    data = driver.execute_script("return JSON.parse(document.getElementById('report-data').textContent)")
    assert data["summary"]["session"].startswith("hostile</script>")
    _screenshot(driver, "report_top.png", tmp_path)

    # an episode's link scrolls to and focuses its first utterance
    ep = driver.find_element(By.CSS_SELECTOR, "#ep-0 a.jump")
    target = ep.get_attribute("href").split("#")[1]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", ep)
    ep.click()
    assert driver.execute_script("return document.activeElement.id") == target
    top, bottom = driver.execute_script(
        "var r = document.activeElement.getBoundingClientRect(); return [r.top, r.bottom]"
    )
    assert 0 <= top and bottom <= driver.execute_script("return window.innerHeight")
    assert "hit" in driver.find_element(By.ID, target).get_attribute("class")
    _screenshot(driver, "report_jump.png", tmp_path)

    # the keyboard moves between utterances
    driver.switch_to.active_element.send_keys(Keys.ARROW_DOWN)
    nxt = int(target.split("-")[1]) + 1
    assert driver.execute_script("return document.activeElement.id") == f"u-{nxt}"

    # filters: a marker, then a speaker; a jump to a hidden utterance clears them
    n = len(driver.find_elements(By.CSS_SELECTOR, "#utts > li"))
    box = driver.find_element(By.CSS_SELECTOR, "input[name=marker][value=repair]")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
    box.click()
    shown = driver.execute_script(
        "return [...document.querySelectorAll('#utts > li')].filter(r => !r.hidden).map(r => r.dataset.m)"
    )
    assert shown and all("repair" in m.split() for m in shown)
    assert driver.find_element(By.ID, "f-count").text == f"{len(shown)} of {n} utterances shown"
    driver.execute_script("arguments[0].click()", driver.find_element(By.CSS_SELECTOR, "#ep-0 a.jump"))
    assert driver.execute_script("return document.activeElement.id") == target
    assert driver.find_element(By.ID, "f-count").text == f"{n} of {n} utterances shown"
    _no_alert(driver)
    assert _console_errors(driver) == []
    assert _requests(driver) <= {url, url + "#" + target}


def test_report_probabilities_show_on_focus(driver, results, tmp_path):
    from selenium.webdriver.common.by import By

    _open(driver, results / "cbt" / "report.html")
    row = driver.find_element(By.CSS_SELECTOR, "#utts > li[data-m~=task]")
    probs = row.find_element(By.CSS_SELECTOR, ".probs")
    assert not probs.is_displayed()
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].focus()", row)
    assert probs.is_displayed() and "task" in probs.text and "0.80" in probs.text
    # a point of the trajectory plot jumps to its window's first utterance
    point = driver.find_element(By.CSS_SELECTOR, "#trajectory svg a")
    target = point.get_dom_attribute("href").lstrip("#")
    driver.execute_script(
        "arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true, cancelable: true}))", point
    )
    assert driver.execute_script("return document.activeElement.id") == target
    driver.execute_script("window.scrollTo(0, 0)")
    _screenshot(driver, "report_cbt.png", tmp_path)
    assert _console_errors(driver) == []


def test_index_in_chromium(driver, results, tmp_path):
    from selenium.webdriver.common.by import By

    url = _open(driver, results / "index.html")
    _no_alert(driver)
    assert _console_errors(driver) == []
    assert _requests(driver) <= {url}
    assert driver.execute_script("return document.images.length") == 0
    assert "<img src=z onerror=alert(5)>" in driver.find_element(By.ID, "table").text
    total = driver.find_element(By.XPATH, "//table[@id='sessions']//th/button[text()='Total']")
    total.click()
    total.click()  # descending
    th = total.find_element(By.XPATH, "..")
    assert th.get_attribute("aria-sort") == "descending"
    vals = driver.execute_script(
        "var i = [...arguments[0].parentNode.children].indexOf(arguments[0]);"
        "return [...document.querySelectorAll('#sessions tbody tr')].map(r => r.cells[i].dataset.v)",
        th,
    )
    nums = [float(v) for v in vals if v]
    assert nums == sorted(nums, reverse=True) and vals[-1] in ("", None)  # the failed input sorts last
    link = driver.find_element(By.CSS_SELECTOR, "#sessions tbody a")
    assert (results / link.get_attribute("href").removeprefix(url.rsplit("/", 1)[0] + "/")).is_file()
    assert driver.find_elements(By.CSS_SELECTOR, "#courses figure svg")
    _screenshot(driver, "index.png", tmp_path)
    _no_alert(driver)
