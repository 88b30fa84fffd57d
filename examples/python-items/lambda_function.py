# The seed's ItemsFunction, as written for AWS Lambda's Python runtime.
items = [
    {"ID": 1, "name": "Pen", "price": 2.5},
    {"ID": 2, "name": "Pencil", "price": 1.5},
    {"ID": 3, "name": "Highlighter", "price": 3.0},
    {"ID": 4, "name": "Ruler", "price": 5.0},
]


def lambda_handler(event, context):
    print("Event: %s" % event)
    if "ID" in event:
        for item in items:
            if item["ID"] == int(event["ID"]):
                return item
        raise Exception("NotFoundError")
    return items
