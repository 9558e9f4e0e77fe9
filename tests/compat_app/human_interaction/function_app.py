# The human-interaction sample of azure-functions-durable (samples/human_interaction: E4 SMS phone
# verification) in the decorator programming model of samples-v2, with `durable_ext` imported in
# place of `azure.durable_functions`. The orchestrator and the starter are the published code; the
# activity returns the challenge code as published but logs the SMS instead of sending it through
# the Twilio output binding.
# The code stays exactly as published (its style included), hence:
# ruff: noqa
import json
import logging
import random
from datetime import timedelta

import azure.functions as func
import durable_ext as df

myApp = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

random.seed(10)


@myApp.route(route="orchestrators/{functionName}")
@myApp.durable_client_input(client_name="client")
async def durable_trigger(req: func.HttpRequest, client):
    payload: str = json.loads(req.get_body().decode())
    instance_id = await client.start_new(req.route_params["functionName"], client_input=payload)

    logging.info(f"Started orchestration with ID = '{instance_id}'.")

    return client.create_check_status_response(req, instance_id)


def is_valid_phone_number(phone_number: str):
    has_area_code = phone_number[0] == "+"
    is_positive_num = phone_number[1:].isdigit()
    return has_area_code and is_positive_num


@myApp.orchestration_trigger(context_name="context")
def E4_SMSPhoneVerification(context: df.DurableOrchestrationContext):

    phone_number = context.get_input()

    if (not phone_number) or (not is_valid_phone_number(phone_number)):
        msg = "Please provide a phone number beginning with an international dialing prefix"+\
            "(+) followed by the country code, and then rest of the phone number. Example:"\
            "'+1425XXXXXXX'"
        raise Exception(msg)

    challenge_code = yield context.call_activity("SendSMSChallenge", phone_number)

    expiration = context.current_utc_datetime + timedelta(seconds=180)
    timeout_task = context.create_timer(expiration)

    authorized = False
    for _ in range(3):
        challenge_response_task = context.wait_for_external_event("SmsChallengeResponse")
        winner = yield context.task_any([challenge_response_task, timeout_task])

        if (winner == challenge_response_task):
            # We got back a response! Compare it to the challenge code
            if (challenge_response_task.result == challenge_code):
                authorized = True
                break
        else:
            # Timeout expired
            break
    
    if not timeout_task.is_completed:
        # All pending timers must be complete or canceled before the function exits.
        timeout_task.cancel()

    return authorized


@myApp.activity_trigger(input_name="phoneNumber")
def SendSMSChallenge(phoneNumber):
    code = random.randint(0, 10000)
    payload = {
        "body": f"Your verification code is {code}",
        "to": phoneNumber
    }

    logging.info(json.dumps(payload))
    code_str = str(code)
    return code_str
