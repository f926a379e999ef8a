"""The student's page "What the site inferred about you": each model in plain words, its
results over time, for which company and whether handed over; an objection that works at
once and tells the companies; a dispute answered by staff, shown "disputed" everywhere."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from backoffice.roles import SUPPORT
from inferences.models import InferenceDispute, InferenceObjection, ObjectionNotice
from inferences.services import inference_model_object
from portal.models import EmailMessage
from tests.factories import StaffFactory, UserFactory
from tests.inferences.conftest import send

pytestmark = pytest.mark.django_db

PAGE = "/inferences/"


def test_the_page_is_linked_from_the_navigation_and_the_dashboard(client, scored):
    client.force_login(scored.student)
    dashboard = client.get(reverse("dashboard")).content.decode()
    assert dashboard.count(f'href="{PAGE}"') == 2  # the navigation and the dashboard's card


def test_each_model_is_described_in_plain_words_with_its_results_over_time(client, scored):
    client.force_login(scored.student)

    page = client.get(PAGE).content.decode()

    for text in (
        "内定辞退率の予測",
        "この企業の内定をあなたが辞退する可能性",
        "閲覧履歴、検索履歴",
        "合否の判断には決して使わない",
        "連絡の優先順位づけにのみ",
        "データ分析部長 山本",
        scored.analysis.title_ja,
    ):
        assert text in page, text
    # Newest first, each with its company and whether it was handed over.
    assert page.index(">12<") < page.index(">64<") < page.index(">81<")
    assert page.count("株式会社青葉") == 2 and "株式会社かえで" in page
    assert page.count("企業に渡しました") == 1
    assert page.count("企業には渡していません") == 2


def test_the_purpose_names_no_one_company_on_the_models_card(client, scored):
    scored.analysis.title_ja = "このサイトでの閲覧履歴を〈企業〉のために分析すること"
    scored.analysis.save(update_fields=["title_ja"])
    client.force_login(scored.student)

    page = client.get(PAGE).content.decode()

    assert "このサイトでの閲覧履歴をあなたが選んだ企業のために分析すること" in page
    assert "〈企業〉" not in page


def test_the_page_is_in_english_for_an_english_reader(client, scored):
    client.force_login(scored.student)
    client.cookies["django_language"] = "en"

    page = client.get(PAGE, headers={"accept-language": "en"}).content.decode()

    assert "What the site inferred about you" in page
    assert "Never in a pass/fail decision" in page
    assert "Made for Aoba KK." in page


def test_a_student_sees_only_their_own_results(client, scored):
    other = UserFactory()
    client.force_login(other)

    page = client.get(PAGE).content.decode()

    assert "内定辞退率の予測" not in page
    assert "推測したものはありません" in page or "No model" in page
    mine = scored.results["r-1"]
    assert client.get(reverse("disclosure:inference_dispute", args=[mine.pk])).status_code == 404
    assert (
        client.post(
            reverse("disclosure:inference_dispute", args=[mine.pk]), {"statement": "x"}
        ).status_code
        == 404
    )
    assert not InferenceDispute.objects.exists()


def test_the_page_runs_a_fixed_number_of_queries(client, scored, django_assert_max_num_queries):
    client.force_login(scored.student)
    client.get(PAGE)
    for n in range(20):
        send(
            scored.pipeline,
            scored.student,
            scored.kaede,
            id=f"more-{n}",
            output=n,
            at=timezone.now(),
        )
    with django_assert_max_num_queries(10):
        response = client.get(PAGE)
    assert response.content.decode().count('class="inference-result"') == 23


# --- objecting ------------------------------------------------------------------------------


def test_objecting_stops_the_next_result_and_tells_the_company_that_was_given_one(
    client, scored, mailoutbox, django_capture_on_commit_callbacks
):
    client.force_login(scored.student)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("inferences:object", args=["decline_likelihood"]))

    assert response.status_code == 302
    assert response.url == f"{PAGE}#model-decline_likelihood"
    objection = InferenceObjection.objects.get(student=scored.student)
    assert objection.model == scored.model
    # The next result by the model is refused, whichever company it is for.
    for employer in (scored.aoba, scored.kaede):
        refused = send(
            scored.pipeline,
            scored.student,
            employer,
            id=f"after-{employer.pk}",
            output=1,
            at=timezone.now(),
        )
        assert (refused.status, refused.code) == (409, "objected")
    # Only the company that was handed a result is told, about that result.
    [notice] = ObjectionNotice.objects.all()
    assert notice.employer == scored.aoba
    [message] = [m for m in mailoutbox if "hr@aoba.example" in m.to]
    assert "内定辞退率の予測" in message.body and "81" in message.body
    assert str(scored.student.public_id) in message.body
    assert message.body.count("作成：") == 1  # 64 was never handed over
    assert notice.email.kind == "inference_objection"
    page = client.get(PAGE).content.decode()
    assert "このモデルに異議を申し立てました" in page
    assert "このモデルに異議を申し立てる" not in page  # the button is gone


def test_objecting_twice_changes_nothing_and_tells_nobody_twice(client, scored, mailoutbox):
    client.force_login(scored.student)
    url = reverse("inferences:object", args=["decline_likelihood"])
    client.post(url)
    emails = EmailMessage.objects.count()

    response = client.post(url, follow=True)

    assert "すでに" in response.content.decode()
    assert InferenceObjection.objects.count() == 1
    assert EmailMessage.objects.count() == emails


def test_objecting_to_a_model_that_does_not_exist_is_404_and_a_get_is_405(client, scored):
    client.force_login(scored.student)
    assert client.post(reverse("inferences:object", args=["no_such_model"])).status_code == 404
    assert client.get(reverse("inferences:object", args=["decline_likelihood"])).status_code == 405
    assert not InferenceObjection.objects.exists()


def test_an_objection_covers_every_version_and_the_service_is_idempotent(scored):
    first, created = inference_model_object(student=scored.student, model=scored.model)
    again, created_again = inference_model_object(student=scored.student, model=scored.model)
    assert (created, created_again, first.pk) == (True, False, again.pk)


# --- disputing ------------------------------------------------------------------------------


def _support(client):
    staff = StaffFactory(is_superuser=False)
    staff.groups.add(Group.objects.get(name=SUPPORT))
    client.force_login(staff)
    return staff


def test_a_dispute_round_trip_student_staff_student(client, scored):
    result = scored.results["r-1"]
    client.force_login(scored.student)

    response = client.post(
        reverse("disclosure:inference_dispute", args=[result.pk]),
        {"statement": "辞退するつもりはありません。第一志望です。"},
    )

    assert response.status_code == 302
    assert response.url == f"{PAGE}#result-{result.pk}"
    dispute = InferenceDispute.objects.get()
    assert (dispute.inference, dispute.student, dispute.is_open) == (result, scored.student, True)
    page = client.get(PAGE).content.decode()
    assert "異議あり" in page and "第一志望です" in page
    assert "まだ回答していません" in page

    # Staff find it in the queue, open first, and on the result's own admin page.
    staff = _support(client)
    queue = client.get(reverse("admin:inferences_inferencedispute_changelist"))
    assert "第一志望" in queue.content.decode() or str(result) in queue.content.decode()
    listing = client.get(reverse("admin:inferences_inference_changelist"), {"disputed": "yes"})
    assert listing.context["cl"].result_count == 1
    answer_url = reverse("admin:inferences_inferencedispute_answer", args=[dispute.pk])
    assert (
        answer_url
        in client.get(
            reverse("admin:inferences_inferencedispute_change", args=[dispute.pk])
        ).content.decode()
    )
    assert "第一志望です" in client.get(answer_url).content.decode()
    response = client.post(
        answer_url,
        {"outcome": "upheld", "answer": "閲覧履歴の集計に誤りがありました。この結果は使いません。"},
    )
    assert response.status_code == 302
    dispute.refresh_from_db()
    assert (dispute.outcome, dispute.answered_by, dispute.is_open) == ("upheld", staff, False)
    # Answered once.
    again = client.post(answer_url, {"outcome": "not_upheld", "answer": "やはり正しい"})
    assert again.status_code == 200
    dispute.refresh_from_db()
    assert dispute.outcome == "upheld"

    client.force_login(scored.student)
    page = client.get(PAGE).content.decode()
    assert "集計に誤りがありました" in page
    assert "取り下げ" in page  # upheld: the result is withdrawn (docs/inferences.md)


def test_a_dispute_needs_words_and_keeps_what_was_typed_on_error(client, scored):
    result = scored.results["r-2"]
    client.force_login(scored.student)

    response = client.post(
        reverse("disclosure:inference_dispute", args=[result.pk]), {"statement": "  "}
    )

    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()
    assert not InferenceDispute.objects.exists()
    long = "あ" * 2001
    response = client.post(
        reverse("disclosure:inference_dispute", args=[result.pk]), {"statement": long}
    )
    assert long in response.content.decode()
    assert not InferenceDispute.objects.exists()


def test_a_result_is_disputed_once_until_staff_answer(client, scored):
    result = scored.results["r-3"]
    client.force_login(scored.student)
    url = reverse("disclosure:inference_dispute", args=[result.pk])
    client.post(url, {"statement": "違います"})

    response = client.post(url, {"statement": "もう一度"})

    assert response.status_code == 200
    assert InferenceDispute.objects.count() == 1
    assert client.get(url).status_code == 200
