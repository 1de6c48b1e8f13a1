<?xml version="1.0" encoding="UTF-8"?>
<!-- Example of a drop-in mapping: NyA offer (PublishOffer) written as XSLT over Brygga's canonical
     offer records. Same output as the Python mapping nya.offer.v1; select it with
     BRYGGA_MAPPINGS="nya.offer=2" or the brygga_nya Connection extra {"mappings": {"offer": 2}}. -->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:c="urn:brygga:canonical:1"
    xmlns="urn:brygga:nya:1"
    xmlns:brygga="urn:brygga:mapping"
    exclude-result-prefixes="c brygga"
    brygga:schema="nya/nya-1.xsd"
    brygga:record="{urn:brygga:nya:1}Offer"
    brygga:canonical="offer"
    brygga:id="offer_id"
    brygga:description="PublishOffer as XSLT (example of a drop-in mapping)">
  <xsl:output method="xml" encoding="UTF-8"/>
  <xsl:param name="round_code"/>
  <xsl:param name="request_id"/>
  <xsl:param name="kind" select="'ordinary'"/>

  <xsl:template match="/c:records">
    <PublishOffer>
      <RequestId><xsl:value-of select="$request_id"/></RequestId>
      <Round><xsl:value-of select="$round_code"/></Round>
      <Kind><xsl:value-of select="$kind"/></Kind>
      <xsl:apply-templates select="c:offer"/>
    </PublishOffer>
  </xsl:template>

  <xsl:template match="c:offer">
    <Offer>
      <OfferId><xsl:value-of select="c:offer_id"/></OfferId>
      <Utbildningskod><xsl:value-of select="c:utbildningskod"/></Utbildningskod>
      <Tillfalleskod><xsl:value-of select="c:tillfalleskod"/></Tillfalleskod>
      <NameSv><xsl:value-of select="c:name_sv"/></NameSv>
      <xsl:if test="c:name_en"><NameEn><xsl:value-of select="c:name_en"/></NameEn></xsl:if>
      <Credits><xsl:value-of select="c:credits"/></Credits>
      <StudyPeriodStart><xsl:value-of select="c:start"/></StudyPeriodStart>
      <StudyPeriodEnd><xsl:value-of select="c:end"/></StudyPeriodEnd>
      <xsl:if test="c:studieort"><Studieort><xsl:value-of select="c:studieort"/></Studieort></xsl:if>
      <Studietakt><xsl:value-of select="c:studietakt"/></Studietakt>
      <Places><xsl:value-of select="c:places"/></Places>
      <xsl:if test="c:programme_code"><ProgrammeCode><xsl:value-of select="c:programme_code"/></ProgrammeCode></xsl:if>
      <xsl:if test="c:package_id"><PackageId><xsl:value-of select="c:package_id"/></PackageId></xsl:if>
    </Offer>
  </xsl:template>
</xsl:stylesheet>
