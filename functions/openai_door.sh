#!/bin/bash
# The OpenAI-compatible door's entry point. The Lambda Web Adapter layer's wrapper
# (AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap) runs this script as the handler, then forwards each
# API Gateway request to the HTTP server it starts on AWS_LWA_PORT and streams the answer back
# (https://github.com/awslabs/aws-lambda-web-adapter, README "Zip Packages"). /opt/python holds
# the Powertools layer's packages.
PYTHONPATH="${LAMBDA_TASK_ROOT}:/opt/python:${PYTHONPATH}" exec python -m openai_http
