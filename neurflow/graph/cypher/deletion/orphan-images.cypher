// Images (among $shas) that no circuit and no patch uses any more.
UNWIND $shas AS sha
MATCH (i:Image {sha256: sha})
WHERE NOT (i)<-[:HAS_IMAGE]-() AND NOT (i)<-[:CROPPED_FROM]-()
DETACH DELETE i
