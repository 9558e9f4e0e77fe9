"""tools/dtfx_fields.py reads the serialised members out of C# source (DataMember attributes,
ITableEntity properties, TableEntity indexer writes, JSON blob classes)."""

from __future__ import annotations

from tools.dtfx_fields import SourceFile, extract

EVENT = """
namespace DurableTask.Core.History
{
    [DataContract]
    public class TaskCompletedEvent : HistoryEvent
    {
        // [DataMember] in a comment is not a member
        [DataMember] public int TaskScheduledId { get; private set; }

        [DataMember(EmitDefaultValue = false)]
        [Obsolete]
        public string? Result { get; set; }

        [DataMember(Name = "Renamed")] public string Field;

        public override EventType EventType => EventType.TaskCompleted;

        public void Method() { var x = new TableEntity(); }
    }
}
"""
ENTITY_AND_WRITER = """
namespace DurableTask.AzureStorage
{
    class Status : ITableEntity
    {
        const string OutputProperty = "Output";
        public string ExecutionId { get; set; }
        public DateTime? CompletedTime { get; set; }
        void Write(TableEntity entity)
        {
            entity["Name"] = "x";
            entity[OutputProperty] = "y";
            if (entity["Other"] == null) { }
        }
        private class AppLeaseInfo
        {
            public string OwnerId { get; set; }
            [JsonIgnore]
            public string Hidden { get; set; }
        }
    }
}
"""


def test_members_entities_writers_and_json_classes_are_extracted() -> None:
    fields = extract(
        [SourceFile("a/TaskCompletedEvent.cs", EVENT), SourceFile("b/Status.cs", ENTITY_AND_WRITER)]
    )
    event = fields["data_contracts"]["DurableTask.Core.History.TaskCompletedEvent"]
    assert event["base"] == "HistoryEvent"
    assert event["members"] == [
        {"name": "TaskScheduledId", "type": "int", "emit_default": True},
        {"name": "Result", "type": "string?", "emit_default": False},
        {"name": "Renamed", "type": "string", "emit_default": True},
    ]
    entity = fields["table_entities"]["DurableTask.AzureStorage.Status"]
    assert [p["name"] for p in entity["properties"]] == ["ExecutionId", "CompletedTime"]
    assert fields["table_writers"]["b/Status.cs"] == ["Name", "Output"]
    lease_info = fields["json_objects"]["DurableTask.AzureStorage.AppLeaseInfo"]
    assert [p["name"] for p in lease_info["properties"]] == ["OwnerId"]
