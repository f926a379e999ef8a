from django.urls import path

from inferences import views

app_name = "inferences"

urlpatterns = [
    path("inferences/", views.inference_list, name="list"),
    path("inferences/models/<slug:code>/object/", views.model_object, name="object"),
]
