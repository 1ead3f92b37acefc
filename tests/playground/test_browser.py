"""The playground in a real browser (issue 12): headless Chromium over a local deployment.

`/` and each model's page are opened as a user would: an example is clicked and submitted (and,
for CIFAR-10, an image file is uploaded through the file input), the rendered answer is checked,
as are the model card and the raw call. No page may log a console error or violate its
Content-Security-Policy. A screenshot of each page goes to build/playground/<page>.png. A second
gateway over the same functions authorizes as a JWT stage with `playground = "jwt"` does: the page
opens without a token, asks for one, and sends it on its card, plot and predict calls.

The models are model_artifacts/'s where it holds all three, else the `tiny` ones trained here
(`serving_store`, tests/conftest.py). Skipped only without chromium, chromedriver or selenium.
"""

from __future__ import annotations

import base64
import json
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelfn.api_routes import route_table
from modelfn.registry import REPO_ROOT, load_registry
from modelfn.store import LocalStore
from tools.local.auth import JwtAuthorizer, LocalJwtIssuer
from tools.local.deployment import LocalDeployment, local_deployment
from tools.local.gateway import Gateway
from tools.local.playground import page_url

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (a dev dependency)"
)
from selenium.webdriver.chromium.webdriver import ChromiumDriver as WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = (
    shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
)
CHROMEDRIVER = shutil.which("chromedriver")
SCREENSHOTS = REPO_ROOT / "build" / "playground"
WAIT_S = 20  # a page, its card and one prediction; each takes well under a second here
WIDTH = 1360
# Collects what the page's CSP refuses. Added through the DevTools protocol, which the page's
# CSP does not govern; a violation is also a console error, this names the directive.
RECORD_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));
"""

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver)",
)


@pytest.fixture(scope="module")
def deployment(
    serving_store: LocalStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalDeployment]:
    logs = tmp_path_factory.mktemp("playground-logs")
    with local_deployment(load_registry(), serving_store, log_dir=logs) as running:
        yield running


@pytest.fixture(scope="module")
def jwt_gateway(deployment: LocalDeployment) -> Iterator[tuple[str, LocalJwtIssuer]]:
    """`modelfn serve --auth jwt` over the same function processes: its URL and token issuer."""
    issuer = LocalJwtIssuer()
    gateway = Gateway(
        route_table(list(deployment.functions), playground=True),
        deployment.functions,
        authorizer=JwtAuthorizer(issuer.public_key, issuer.issuer, [issuer.audience]),
    )
    gateway.start()
    try:
        yield gateway.url, issuer
    finally:
        gateway.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM  # type: ignore[assignment]
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        f"--window-size={WIDTH},900",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver: WebDriver = webdriver.Chrome(
        service=Service(executable_path=CHROMEDRIVER), options=options
    )
    driver.set_page_load_timeout(WAIT_S)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_CSP})
    try:
        yield driver
    finally:
        driver.quit()


def card_of(deployment: LocalDeployment, model: str) -> dict[str, Any]:
    with urllib.request.urlopen(
        f"{deployment.url}/models/{model}/card.json", timeout=WAIT_S
    ) as response:
        card: dict[str, Any] = json.load(response)
    return card


def open_page(driver: WebDriver, url: str) -> None:
    driver.get(url)
    WebDriverWait(driver, WAIT_S).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def wait_ready(driver: WebDriver) -> None:
    WebDriverWait(driver, WAIT_S).until(
        lambda d: d.execute_script("return document.body.dataset.ready") == "true"
    )


def submit(driver: WebDriver) -> Any:
    """Submit the form and wait for the answer it renders (the previous one is cleared first)."""
    driver.execute_script("document.getElementById('result').replaceChildren()")
    driver.find_element(By.ID, "submit").click()
    return WebDriverWait(driver, WAIT_S).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#answer, .answer.error")
    )[0]


def check_answer_ok(answer: Any) -> None:
    assert "error" not in (answer.get_attribute("class") or ""), answer.text


def bar_rows(driver: WebDriver) -> list[tuple[str, float]]:
    """(name, bar width in px) of each bar the answer shows."""
    names = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#answer .bars .name")]
    widths = [e.size["width"] for e in driver.find_elements(By.CSS_SELECTOR, "#answer .bars .fill")]
    assert len(names) == len(widths)
    return list(zip(names, widths, strict=True))


def check_raw_call(driver: WebDriver, model: str) -> None:
    assert f"/models/{model}/predict" in driver.find_element(By.ID, "raw-line").text
    assert '"inputs"' in driver.find_element(By.ID, "raw-request").text
    assert '"outputs"' in driver.find_element(By.ID, "raw-response").text
    assert "HTTP 200" in driver.find_element(By.ID, "raw-status").text


def open_model_page(driver: WebDriver, deployment: LocalDeployment, model: str) -> dict[str, Any]:
    """Open `model`'s page, wait for it, check its rendered card; the card, as its function says."""
    card = card_of(deployment, model)
    open_page(driver, page_url(deployment.url, model))
    wait_ready(driver)
    check_card(driver, card)
    return card


def check_card(driver: WebDriver, card: dict[str, Any]) -> None:
    facts = driver.find_element(By.ID, "facts").text
    for shown in (
        card["version"],
        card["data"]["sha256"],
        card["data"]["dataset"],
        card["training"]["preset"],
    ):
        assert shown in facts
    metrics = driver.find_element(By.ID, "metrics").text
    assert all(name in metrics for name in card["metrics"])
    if card["per_class"]:
        rows = driver.find_elements(By.CSS_SELECTOR, "#per-class tr")
        assert len(rows) == 1 + len(card["per_class"])
    plots = driver.find_elements(By.CSS_SELECTOR, "#plots img")
    assert len(plots) == len(card["plots"])
    for plot in plots:  # scrolled to, so lazy images load; naturalWidth 0 is a broken image
        driver.execute_script("arguments[0].scrollIntoView()", plot)
        loaded = "return arguments[0].complete"
        WebDriverWait(driver, WAIT_S).until(lambda d: d.execute_script(loaded, plot))  # noqa: B023
        assert driver.execute_script("return arguments[0].naturalWidth", plot) > 0, (
            plot.get_attribute("src")
        )


def check_clean_and_save(driver: WebDriver, name: str) -> None:
    """No console error and no CSP violation; then a full-page screenshot."""
    logged = driver.get_log("browser")  # type: ignore[no-untyped-call]  # unannotated in selenium
    errors = [e for e in logged if e["level"] == "SEVERE"]
    assert not errors, errors
    violations = driver.execute_script("return window.__csp")
    assert violations == [], violations
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.execute_script("window.scrollTo(0, 0)")
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(WIDTH, min(max(900, height + 140), 4000))
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
    driver.set_window_size(WIDTH, 900)


# --- the pages ------------------------------------------------------------------------------------


def test_index_lists_each_model_with_its_headline(
    browser: WebDriver, deployment: LocalDeployment
) -> None:
    open_page(browser, deployment.url + "/")
    rows = browser.find_elements(By.CSS_SELECTOR, "#models tr")[1:]
    assert len(rows) == len(deployment.functions)
    for row, model in zip(rows, deployment.functions, strict=True):
        card = card_of(deployment, model)
        text = row.text
        assert (
            model in text
            and card["version"] in text
            and card["alias"] in text
            and card["task"] in text
        )
        assert card["headline"]["name"] in text  # accuracy, or test_perplexity for the LM
        link = row.find_element(By.TAG_NAME, "a").get_attribute("href")
        assert link == page_url(deployment.url, model)
    check_clean_and_save(browser, "index")


def test_cifar_page_classifies_an_example_and_an_uploaded_file(
    browser: WebDriver, deployment: LocalDeployment, tmp_path: Path
) -> None:
    model = "cifar10-cnn"
    card = open_model_page(browser, deployment, model)

    browser.find_elements(By.CSS_SELECTOR, "#examples .example")[0].click()
    answer = submit(browser)
    check_answer_ok(answer)
    rows = bar_rows(browser)
    assert len(rows) == 5  # the form's default top k
    assert {name for name, _ in rows} <= set(card["labels"])
    assert answer.get_attribute("data-label") == rows[0][0]
    assert all(width > 0 for _, width in rows) and rows[0][1] >= rows[-1][1]
    assert "data set says" in answer.text  # the example's own label, next to the answer
    check_raw_call(browser, model)

    # A real test image again, this time as a file the user picks.
    image = tmp_path / "test-image.png"
    image.write_bytes(base64.b64decode(card["examples"][-1]["input"]))
    browser.find_element(By.ID, "file").send_keys(str(image))
    WebDriverWait(browser, WAIT_S).until(
        lambda d: d.execute_script(
            "return document.getElementById('preview').src.startsWith('blob:')"
        )
    )
    answer = submit(browser)
    check_answer_ok(answer)
    assert {name for name, _ in bar_rows(browser)} <= set(card["labels"])
    assert "data:image/png;base64," in browser.find_element(By.ID, "raw-request").text
    check_clean_and_save(browser, model)


def test_imdb_page_labels_an_example_review(
    browser: WebDriver, deployment: LocalDeployment
) -> None:
    model = "imdb-sentiment"
    card = open_model_page(browser, deployment, model)

    browser.find_elements(By.CSS_SELECTOR, "#examples .example")[0].click()
    assert (
        browser.find_element(By.ID, "text").get_attribute("value") == card["examples"][0]["input"]
    )
    answer = submit(browser)
    check_answer_ok(answer)
    label = answer.get_attribute("data-label")
    assert label in card["labels"]
    assert answer.text.startswith(label) and "%" in answer.text.splitlines()[0]
    assert bar_rows(browser)[0][0] == label
    check_raw_call(browser, model)
    check_clean_and_save(browser, model)


def test_ptb_page_predicts_next_words_scores_and_generates(
    browser: WebDriver, deployment: LocalDeployment
) -> None:
    model = "ptb-lstm"
    card = open_model_page(browser, deployment, model)

    browser.find_elements(By.CSS_SELECTOR, "#examples .example")[0].click()
    assert (
        browser.find_element(By.ID, "text").get_attribute("value") == card["examples"][0]["prompt"]
    )
    answer = submit(browser)
    check_answer_ok(answer)
    assert answer.get_attribute("data-kind") == "next"
    words = bar_rows(browser)
    assert len(words) == 5 and all(name for name, _ in words)

    browser.find_element(By.CSS_SELECTOR, "input[name=mode][value=score]").find_element(
        By.XPATH, ".."
    ).click()
    assert (
        browser.find_element(By.ID, "text").get_attribute("value") == card["examples"][0]["input"]
    )
    answer = submit(browser)
    check_answer_ok(answer)
    assert answer.get_attribute("data-kind") == "score" and "Perplexity" in answer.text

    browser.find_element(By.CSS_SELECTOR, "input[name=mode][value=generate]").find_element(
        By.XPATH, ".."
    ).click()
    answer = submit(browser)
    check_answer_ok(answer)
    assert answer.get_attribute("data-kind") == "generate"
    assert browser.find_element(By.CSS_SELECTOR, "#answer .new").text.strip()
    assert '"temperature"' in browser.find_element(By.ID, "raw-request").text
    # Generate last: the screenshot shows the continuation; next words are checked above.
    check_raw_call(browser, model)
    check_clean_and_save(browser, model)


def test_on_a_jwt_stage_the_page_asks_for_a_token_and_sends_it_on_every_call(
    browser: WebDriver, deployment: LocalDeployment, jwt_gateway: tuple[str, LocalJwtIssuer]
) -> None:
    url, issuer = jwt_gateway
    model = "cifar10-cnn"
    card = card_of(deployment, model)  # from the gateway without auth, to compare with
    # The page and its script load without a token; the card is refused, so the page asks.
    open_page(browser, page_url(url, model))
    WebDriverWait(browser, WAIT_S).until(lambda d: d.find_element(By.ID, "auth").is_displayed())
    assert "bearer token" in browser.find_element(By.ID, "status").text
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / f"{model}-jwt-token.png"))
    refused = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]  # type: ignore[no-untyped-call]
    # Chromium logs each 401 as an error: the card's, and nothing else.
    assert refused and all("card.json" in e["message"] and "401" in e["message"] for e in refused)

    token = issuer.mint(subject="playground-user")
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "use-token").click()
    wait_ready(browser)
    check_card(browser, card)  # the plots too, fetched with the token
    plots = browser.find_elements(By.CSS_SELECTOR, "#plots img")
    assert all(p.get_attribute("src").startswith("blob:") for p in plots)
    browser.find_elements(By.CSS_SELECTOR, "#examples .example")[0].click()
    answer = submit(browser)
    check_answer_ok(answer)
    check_raw_call(browser, model)
    assert "authorization: Bearer <token>" in browser.find_element(By.ID, "raw-line").text

    # Kept in this tab's sessionStorage, never in the URL or on the page.
    stored = browser.execute_script("return sessionStorage.getItem('modelfn.token')")
    assert stored == token
    assert token not in browser.current_url and token not in browser.page_source
    # A reload uses the stored token: no question, no refused call.
    browser.refresh()
    wait_ready(browser)
    assert not browser.find_element(By.ID, "auth").is_displayed()
    check_clean_and_save(browser, f"{model}-jwt")
    # Forgotten, the next call is refused and the page asks again.
    browser.find_element(By.ID, "forget-token").click()
    assert browser.execute_script("return sessionStorage.getItem('modelfn.token')") is None
    browser.find_elements(By.CSS_SELECTOR, "#examples .example")[0].click()
    assert "error" in (submit(browser).get_attribute("class") or "")
    assert browser.find_element(By.ID, "auth").is_displayed()
    browser.get_log("browser")  # type: ignore[no-untyped-call]  # that 401 is logged as an error too
