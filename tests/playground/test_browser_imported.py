"""The pages of imported models in a real browser (headless Chromium over a local deployment).

An imported model has no data fingerprint, training run or metrics, and a tensor model has no
image or text to type: its page takes one example's named tensors as JSON. Each page must build
its card and form, answer a click on an example, and log no console error or CSP violation.
Skipped, as tests/playground/test_browser.py is, without chromium, chromedriver or selenium.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelfn.artifact import Example, Examples, ImagePreprocessing
from modelfn.registry import parse_registry
from modelfn.store import LocalStore, publish_artifact
from tests.playground.test_browser import (  # the browser fixture and the page helpers
    CHROMEDRIVER,
    CHROMIUM,
    WAIT_S,
    browser,
    card_of,
    check_answer_ok,
    check_clean_and_save,
    open_page,
    submit,
    wait_ready,
)
from tests.support.imported import write_image_classifier, write_tensor_model
from tests.support.manifests import CIFAR10_LABELS
from tools.local.deployment import LocalDeployment, local_deployment
from tools.local.playground import page_url

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
from selenium.webdriver.chromium.webdriver import ChromiumDriver as WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

__all__ = ["browser"]  # a fixture, used by name
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None, reason="chromium and chromedriver are not installed"
)
CIFAR = Path(__file__).resolve().parents[3] / "shared/data/cifar-10-batches-py"
REGISTRY = """
[models.imported-vision]
task = "image-classification"
imported = true

[models.imported-tensor]
task = "tensor"
imported = true
"""


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDeployment]:
    if not (CIFAR / "test_batch").is_file():
        pytest.skip(f"CIFAR-10 test batch not found in {CIFAR}")
    from tests.modelfn.test_images import upscaled
    from training.data.cifar10 import load_cifar10

    root = tmp_path_factory.mktemp("imported-pages")
    pngs = upscaled(load_cifar10(CIFAR).test.images[:3].transpose(0, 2, 3, 1), 64, 48)
    images = Examples(
        dataset="user examples",
        examples=[
            Example(input=base64.b64encode(p).decode(), split="examples", index=i)
            for i, p in enumerate(pngs)
        ],
    )
    tensors = Examples(
        dataset="user examples",
        examples=[
            Example(
                input=json.dumps({"input.1": [0.5, -1.0, 2.0, 0.25], "offset": 3}),
                split="examples",
                index=0,
            )
        ],
    )
    spec = ImagePreprocessing(
        height=24, width=24, resize=28, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)
    )
    store = LocalStore(root / "store")
    vision, _ = write_image_classifier(root / "build", spec, CIFAR10_LABELS, examples=images)
    for folder in (vision, write_tensor_model(root / "build", examples=tensors)):
        publish_artifact(store, folder)
    with local_deployment(parse_registry(REGISTRY), store, log_dir=root / "logs") as running:
        yield running


def check_imported_card(driver: WebDriver) -> None:
    facts = driver.find_element(By.ID, "facts").text
    assert "Imported" in facts and "onnx: model.onnx" in facts and "Training" not in facts
    assert not driver.find_element(By.ID, "metrics-box").is_displayed()  # no metrics to show
    assert driver.find_element(By.ID, "examples-title").text.lower() == "examples given at import"


def test_an_imported_image_classifier_page(browser: WebDriver, deployment: LocalDeployment) -> None:
    model = "imported-vision"
    card = card_of(deployment, model)
    open_page(browser, page_url(deployment.url, model))
    wait_ready(browser)
    check_imported_card(browser)
    browser.find_elements(By.CSS_SELECTOR, "#examples .example")[0].click()
    answer = submit(browser)
    check_answer_ok(answer)
    assert answer.get_attribute("data-label") in card["labels"]
    check_clean_and_save(browser, model)


def test_a_tensor_model_page_sends_one_examples_named_tensors(
    browser: WebDriver, deployment: LocalDeployment
) -> None:
    model = "imported-tensor"
    open_page(browser, page_url(deployment.url, model))
    wait_ready(browser)
    check_imported_card(browser)
    assert "input.1 FP32 [-1, 4]" in browser.find_element(By.ID, "facts").text
    browser.find_elements(By.CSS_SELECTOR, "#examples .example")[0].click()
    text = browser.find_element(By.ID, "text").get_attribute("value")
    assert json.loads(text) == {"input.1": [0.5, -1.0, 2.0, 0.25], "offset": 3}
    answer = submit(browser)
    check_answer_ok(answer)
    assert answer.get_attribute("data-kind") == "tensors"
    assert [h.text for h in answer.find_elements(By.CSS_SELECTOR, ".headline")] == ["y", "norm"]
    # norm = 0.25 + 1 + 4 + 0.0625
    assert json.loads(answer.find_elements(By.TAG_NAME, "pre")[1].text) == pytest.approx(5.3125)
    # A client mistake comes back as the function's 400, shown on the page.
    box = browser.find_element(By.ID, "text")
    box.clear()
    box.send_keys('{"input.1": [1, 2, 3]}')
    error = submit(browser)
    assert "error" in (error.get_attribute("class") or "")
    WebDriverWait(browser, WAIT_S).until(lambda d: "missing 'offset'" in error.text)
    browser.get_log("browser")  # type: ignore[no-untyped-call]  # the 400 is logged as an error
    box.clear()
    box.send_keys(json.dumps({"input.1": [1, 2, 3, 4], "offset": 0}))
    check_answer_ok(submit(browser))
    check_clean_and_save(browser, model)
