// Patches of the given images that exemplify nothing, on images no circuit uses (HAS_IMAGE) any more: what an
// ingestion killed between writing patches and semantic groups leaves behind, reached from its circuit's
// images. Images still used by a circuit keep their patches (a concurrent ingestion may be writing them).
UNWIND $shas AS sha
MATCH (i:Image {sha256: sha})
WHERE NOT (i)<-[:HAS_IMAGE]-()
MATCH (p:Patch)-[:CROPPED_FROM]->(i)
WHERE NOT (p)-[:EXEMPLIFIES]->()
DETACH DELETE p
RETURN count(p) AS deleted
